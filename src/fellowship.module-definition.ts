import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { FellowshipOptions } from './config/fellowship-options.interface.js';

export const {
  ConfigurableModuleClass: FellowshipConfigurableModule,
  MODULE_OPTIONS_TOKEN: FELLOWSHIP_MODULE_OPTIONS,
  OPTIONS_TYPE: FELLOWSHIP_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: FELLOWSHIP_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<FellowshipOptions>({ moduleName: 'Fellowship' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createFellowshipOptions')
  .build();
