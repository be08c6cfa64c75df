/**
 * Where and how to reach Temporal, read the way Temporal's own tools read it (the SDK's envconfig:
 * `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_GRPC_META_*`,
 * and a profile of the `temporal.toml` file named by `TEMPORAL_CONFIG_FILE` / `TEMPORAL_PROFILE`, which
 * the Temporal CLI writes too). So one set of settings serves the worker, the API, the admin CLI and
 * `temporal` itself, for a local server, a self-hosted cluster with mTLS, or Temporal Cloud.
 *
 * Unlike the SDK's default, the profile file is read only when one of those two variables asks for it:
 * a developer's CLI profile pointing at a production namespace must not turn `npm start` (which seeds
 * demo data) or the tests into clients of that namespace.
 */
import { existsSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

/** What a connection needs besides the address: the same for Connection (clients) and NativeConnection (workers). */
export interface TemporalTransport {
  /** true: TLS with the system's CAs; an object: its CA, client certificate or server name; false/absent: plaintext. */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC headers sent with every call (`TEMPORAL_GRPC_META_<NAME>`). */
  metadata?: Record<string, string>;
}

export interface TemporalSettings {
  address: string;
  namespace: string;
  transport: TemporalTransport;
}

const PATH_VARIABLES = ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'] as const;

/**
 * envconfig takes a variable that is set but empty as a value (an empty API key would turn TLS on),
 * whereas this service, and docker compose's `${VAR:-}`, mean "unset" by it. Empty gRPC headers keep
 * their envconfig meaning: they remove a header the profile sets.
 */
function setVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (value === '' && !name.startsWith('TEMPORAL_GRPC_META_')) continue;
    out[name] = value;
  }
  return out;
}

function booleanVariable(vars: Record<string, string>, name: string): void {
  const value = vars[name];
  // envconfig reads anything but "true" and "1" as false, so a typo would silently mean the opposite.
  if (value !== undefined && !['true', 'false', '1', '0'].includes(value)) throw new Error(`${name} must be true or false, got "${value}"`);
}

function loadProfile(vars: Record<string, string>): ClientConfigProfile {
  const file = vars.TEMPORAL_CONFIG_FILE;
  // envconfig skips a config file it cannot find; one named explicitly and missing is a mistake.
  if (file !== undefined && !existsSync(file)) throw new Error(`TEMPORAL_CONFIG_FILE names ${file}, which does not exist`);
  const useFile = file !== undefined || vars.TEMPORAL_PROFILE !== undefined;
  try {
    return loadClientConfigProfile({ overrideEnvVars: vars, disableFile: !useFile });
  } catch (err) {
    const where = file
      ? `TEMPORAL_CONFIG_FILE ${file}`
      : 'the Temporal config file (temporalio/temporal.toml in the user config directory)';
    const profile = vars.TEMPORAL_PROFILE ? `, TEMPORAL_PROFILE ${vars.TEMPORAL_PROFILE}` : '';
    throw new Error(`Temporal connection settings (${where}${profile}): ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the TLS files now, naming the variable whose file cannot be read. */
function toTransport(profile: ClientConfigProfile, vars: Record<string, string>): TemporalTransport {
  let options: ReturnType<typeof toClientOptions>['connectionOptions'];
  try {
    ({ connectionOptions: options } = toClientOptions(profile));
  } catch (err) {
    const failedPath = (err as NodeJS.ErrnoException).path;
    const variable = PATH_VARIABLES.find((name) => vars[name] !== undefined && vars[name] === failedPath);
    throw new Error(`${variable ?? 'a TLS file of the Temporal config profile'}: ${(err as Error).message}`, { cause: err });
  }
  const transport: TemporalTransport = {};
  if (options.tls !== undefined && options.tls !== null) transport.tls = options.tls;
  if (options.apiKey !== undefined) transport.apiKey = options.apiKey;
  // Headers from variables and TOML are text; the type also admits binary ones, which neither source makes.
  const headers = Object.entries(options.metadata ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string');
  if (headers.length > 0) transport.metadata = Object.fromEntries(headers);
  return transport;
}

/**
 * Address, namespace and transport from the environment (and the Temporal config file, which the
 * environment overrides). Without any of it: localhost:7233, namespace `default`, plaintext. An API
 * key turns TLS on unless `TEMPORAL_TLS=false` says otherwise (envconfig's rule; Temporal Cloud needs TLS).
 */
export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const vars = setVariables(env);
  booleanVariable(vars, 'TEMPORAL_TLS');
  booleanVariable(vars, 'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION');
  // The TypeScript SDK reads this variable but has no such option; saying so beats ignoring it.
  if (vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === 'true' || vars.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION === '1') {
    throw new Error(
      'TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not supported by the TypeScript SDK; set TEMPORAL_TLS_SERVER_NAME to the name in the server certificate instead',
    );
  }
  const profile = loadProfile(vars);
  const tls = profile.tls;
  // envconfig drops a certificate that comes without its key (or a key without its certificate) and
  // connects without mTLS; the server would then refuse the connection with a less helpful message.
  if (tls && !tls.disabled && (tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
    throw new Error(
      "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or the profile's client_cert and client_key) must be set together",
    );
  }
  return {
    address: profile.address || DEFAULT_TEMPORAL_ADDRESS,
    namespace: profile.namespace || DEFAULT_TEMPORAL_NAMESPACE,
    transport: toTransport(profile, vars),
  };
}

/** For logs and error messages: how the connection is secured, without any secret. */
export function describeTransport(transport: TemporalTransport): string {
  const parts: string[] = [];
  if (!transport.tls) parts.push('plaintext');
  else if (transport.tls === true) parts.push('TLS');
  else parts.push(transport.tls.clientCertPair ? 'mTLS' : 'TLS');
  if (transport.apiKey !== undefined) parts.push('API key');
  return parts.join(' + ');
}
