import winston from 'winston';

/**
 * JSON logs on stdout with controller-runtime's keys (controller, namespace, name, reconcileID) added by
 * child loggers. Error objects are serialised by describeError() at the call site, never passed raw.
 */
export function createLogger(level = 'info', defaultMeta: Record<string, unknown> = {}): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { logger: 'nxt-rollback-operator', ...defaultMeta },
    transports: [new winston.transports.Console()],
  });
}
