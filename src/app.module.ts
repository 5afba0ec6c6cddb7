import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { EnvironmentVariables, envToOptions, validateEnv } from './config/env.validation.js';
import { FellowshipModule } from './fellowship.module.js';

const ENV_NAMES = Object.keys(new EnvironmentVariables());

/** The standalone server: the embeddable FellowshipModule fed from the validated environment. */
@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, cache: true, validate: validateEnv }),
    FellowshipModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) =>
        envToOptions(validateEnv(Object.fromEntries(ENV_NAMES.map((name) => [name, config.get<unknown>(name)])))),
    }),
  ],
})
export class AppModule {}
