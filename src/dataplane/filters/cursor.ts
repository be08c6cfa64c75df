/** Opaque paging cursors: the last user id of a page, so the next page starts strictly after it. */
import { badRequest } from '../errors';

const PREFIX = 'u1:';

export function encodeCursor(lastUserId: string): string {
  return Buffer.from(PREFIX + lastUserId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX) || text.length === PREFIX.length) {
    throw badRequest('cursor is not one this API returned: pass nextCursor from the previous page unchanged', { field: 'cursor' });
  }
  return text.slice(PREFIX.length);
}
