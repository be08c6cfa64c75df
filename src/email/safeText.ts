/**
 * Text a caller chose (message names, tags, ids, request ids) as it may appear in an e-mail we send:
 * on one line, without control or invisible characters, shortened, and with anything a mail client
 * would turn into a link defanged (`evil[.]example`, `https[:]//`), so our sender domain never
 * carries someone else's link or a forged line of text.
 */
const CONTROL_OR_INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
const DOMAIN_LIKE = /\b([\p{L}\p{N}-]+)((?:\.[\p{L}\p{N}-]+)*)\.(\p{L}{2,})\b/gu;

export function safeInline(text: string, maxLength = 80): string {
  let s = text.replace(CONTROL_OR_INVISIBLE, ' ').replace(/\s+/g, ' ').trim();
  s = s.replace(/:\/\//g, '[:]//').replace(/@/g, '[at]');
  s = s.replace(DOMAIN_LIKE, (_m, first: string, middle: string, last: string) => `${first}${middle.replace(/\./g, '[.]')}[.]${last}`);
  return s.length > maxLength ? `${s.slice(0, maxLength - 1)}…` : s;
}

/** safeInline in double quotes, the way caller text is set apart from ours. */
export function quoted(text: string, maxLength = 80): string {
  return `"${safeInline(text, maxLength).replace(/"/g, "'")}"`;
}
