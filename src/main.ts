import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { ConfigError, validateEnv, type EnvironmentVariables } from './config/env.validation.js';
import { createLogger } from './common/logging.js';

/** Standalone entry point: validate the environment, start, and shut down gracefully on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  if (existsSync('.env')) {
    process.loadEnvFile('.env');
  }
  let env: EnvironmentVariables;
  try {
    env = validateEnv(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({
    logDir: env.LOG_DIR,
    level: env.LOG_LEVEL,
    production: env.NODE_ENV === 'production',
    secrets: [env.LLM_API_KEY, env.DATA_ENCRYPTION_KEY, ...env.API_KEYS.split(','), ...env.ADMIN_API_KEYS.split(',')].map((s) => s.trim()).filter((s) => s.length > 0),
    console: true,
  });
  const [{ AppModule }, { createServer }] = await Promise.all([import('./app.module.js'), import('./bootstrap.js')]);
  const app = await createServer(
    AppModule,
    { maxBodyBytes: env.MAX_BODY_BYTES, trustProxy: env.TRUST_PROXY, corsOrigins: env.CORS_ORIGINS },
    logger,
  );

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) {
      return;
    }
    closing = true;
    logger.log(`${signal} received: shutting down`, 'Main');
    const force = setTimeout(() => {
      logger.error(`shutdown took longer than ${env.SHUTDOWN_TIMEOUT_MS} ms; exiting`, undefined, 'Main');
      process.exit(1);
    }, env.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    // Stop accepting connections now; open ones (members, requests in progress) are closed by the
    // shutdown hooks (HubService.beforeApplicationShutdown), then Nest closes the server.
    app.getHttpServer().close();
    app
      .close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error(`shutdown failed: ${String(error)}`, undefined, 'Main');
        process.exit(1);
      });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  await app.listen(env.PORT, env.HOST);
  const address = app.getHttpServer().address();
  const where = typeof address === 'object' && address ? `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}` : String(address);
  logger.log(`Fellowship listening on http://${where}`, 'Main');
}

main().catch((error: unknown) => {
  process.stderr.write(`Fellowship failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
