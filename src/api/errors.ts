/** How failures of a call to Temporal are told apart, for the API's status codes and the CLI's messages. */
import { RequestRefusedError, ResumeRefusedError, UnknownMessageError } from '../client/lifecycleClient';
import { InvalidInputError } from '../shared/validation';
import { InvalidMessageRefError } from '../shared/workflowId';

/** gRPC status codes that matter here; @grpc/grpc-js is only a transitive dependency. */
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_UNAVAILABLE = 14;

export type FailureKind =
  'invalid_input' | 'resume_refused' | 'refused' | 'unknown_message' | 'temporal_unavailable' | 'temporal_timeout' | 'internal';

/** The SDK wraps gRPC errors (ServiceError → cause), so the status code may sit a few levels down. */
export function grpcCode(err: unknown): number | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export function classifyFailure(err: unknown): FailureKind {
  if (err instanceof InvalidMessageRefError || err instanceof InvalidInputError) return 'invalid_input';
  if (err instanceof ResumeRefusedError) return 'resume_refused';
  if (err instanceof RequestRefusedError) return 'refused';
  if (err instanceof UnknownMessageError) return 'unknown_message';
  const code = grpcCode(err);
  if (code === GRPC_UNAVAILABLE) return 'temporal_unavailable';
  if (code === GRPC_DEADLINE_EXCEEDED) return 'temporal_timeout';
  return 'internal';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
