/**
 * Admin CLI `interaction-data` (bin/interaction-data, or `npm run cli -- <command>`).
 *
 * Exit codes: 0 done; 1 the operation failed or was refused, or Temporal could not be reached;
 * 2 the command line was wrong, in which case nothing was sent.
 */
import { Command, CommanderError } from 'commander';
import { version } from '../../package.json';
import { describeFailure } from './batch';
import { CliContext, CommandFailedError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo } from './context';
import { registerArchive } from './commands/archive';
import { registerArchiving } from './commands/archiving';
import { registerAudit } from './commands/audit';
import { registerBulk } from './commands/bulk';
import { registerList } from './commands/list';
import { registerReports } from './commands/reports';
import { registerRestore } from './commands/restore';
import { registerResume } from './commands/resume';
import { registerRetry } from './commands/retry';
import { registerStatus } from './commands/status';
import { registerStop } from './commands/stop';
import { registerTokens } from './commands/tokens';
import { registerUsers } from './commands/users';

export type { CliIo, OutputStream } from './context';
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './context';

interface GlobalOptions {
  address?: string;
  namespace?: string;
}

function buildProgram(ctx: CliContext): Command {
  const program = new Command('interaction-data');
  program
    .description('Availability, long-term storage and restore of campaign and Canvas interaction data.')
    .version(version, '-V, --version')
    .option('--address <host:port>', 'Temporal frontend (default: $TEMPORAL_ADDRESS or localhost:7233)')
    .option('--namespace <name>', 'Temporal namespace (default: $TEMPORAL_NAMESPACE or default)')
    // Inherited by the subcommands added below: errors become exceptions and output goes to ctx.io,
    // so that runCli can return an exit code instead of the process exiting under a caller.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.io.stdout.write(text),
      writeErr: (text) => ctx.io.stderr.write(text),
    })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nMessages are written <kind>:<id>, e.g. campaign:6f1c2b or canvas:welcome-flow.\n' +
        'Exit codes: 0 done, 1 failed or refused (or Temporal unreachable), 2 bad command line (nothing sent).',
    );
  registerStop(program, ctx);
  registerResume(program, ctx);
  registerRestore(program, ctx);
  registerRetry(program, ctx);
  registerStatus(program, ctx);
  registerList(program, ctx);
  registerBulk(program, ctx);
  registerTokens(program, ctx);
  registerAudit(program, ctx);
  registerArchive(program, ctx);
  registerArchiving(program, ctx);
  registerUsers(program, ctx);
  registerReports(program, ctx);
  return program;
}

/** Runs one command line (without the node and script arguments) and resolves with its exit code. */
export async function runCli(argv: readonly string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let program: Command | null = null;
  const ctx = new CliContext(io, () => program?.opts<GlobalOptions>() ?? {});
  program = buildProgram(ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help/version it was asked for).
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      ctx.err(`error: ${err.message}`);
      ctx.err('nothing was sent (run with --help for usage)');
      return EXIT_USAGE;
    }
    if (err instanceof CommandFailedError) {
      ctx.err(`error: ${err.message}`);
      return EXIT_FAILURE;
    }
    ctx.err(`error: ${describeFailure(err)}`);
    if (process.env.DEBUG && err instanceof Error && err.stack) ctx.err(err.stack);
    return EXIT_FAILURE;
  } finally {
    await ctx.close();
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`interaction-data: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
