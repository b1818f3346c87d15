// `run`: resolve the config (exit 2 on any problem), then bridge until a signal arrives.
import { ConfigFlags, resolveConfig } from '../../config/load';
import { createLogger } from '../../log';
import { createAttacher } from '../../service/attach';
import { runBridge } from '../../service/run';
import { buildRoutes } from '../../service/routes';
import type { CliIo } from '../main';

export async function runCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const { config, file } = resolveConfig(argv as ConfigFlags & { config?: string }, io.env);
  const log = createLogger({ format: config.log.format, level: config.log.level });
  if (file) log.info(`config: ${file}`);
  const attacher = createAttacher(config, log);
  const routes = buildRoutes(config, log);
  return runBridge({ config, log, attacher, routes });
}
