import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { FellowshipModuleOptions } from './fellowship.ports.js';

export const {
  ConfigurableModuleClass: FellowshipConfigurableModule,
  MODULE_OPTIONS_TOKEN: FELLOWSHIP_MODULE_OPTIONS,
  OPTIONS_TYPE: FELLOWSHIP_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: FELLOWSHIP_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<FellowshipModuleOptions>({ moduleName: 'Fellowship' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createFellowshipOptions')
  .build();
