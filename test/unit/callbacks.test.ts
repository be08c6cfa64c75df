/** Callback signatures and which callback URLs are accepted (src/callbacks/), without a network. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertCallbackUrl, hostAllowed } from '../../src/callbacks/callbackUrl';
import { signCallback, verifyCallbackSignature } from '../../src/callbacks/signature';

const SECRET = 'k'.repeat(40);

describe('callback signatures', () => {
  const body = JSON.stringify({ event: 'restore.completed', rowCount: 3 });
  const t = 1_800_000_000;

  it('verify what was signed, within the tolerance', () => {
    const header = signCallback(SECRET, body, t);
    assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/);
    assert.equal(verifyCallbackSignature(SECRET, header, body, t + 10), true);
  });

  it('refuse another body, another secret, an old timestamp or a malformed header', () => {
    const header = signCallback(SECRET, body, t);
    assert.equal(verifyCallbackSignature(SECRET, header, body.replace('3', '4'), t), false);
    assert.equal(verifyCallbackSignature('x'.repeat(40), header, body, t), false);
    assert.equal(verifyCallbackSignature(SECRET, header, body, t + 301), false, 'replayed after five minutes');
    assert.equal(verifyCallbackSignature(SECRET, header.replace(`t=${t}`, `t=${t + 1}`), body, t), false, 'the timestamp is signed');
    for (const bad of [undefined, '', 'v1=abc', `t=${t}`, `t=${t},v1=zz`])
      assert.equal(verifyCallbackSignature(SECRET, bad, body, t), false);
  });
});

describe('callback URLs', () => {
  const policy = { allowedHosts: ['hooks.example.com', '*.internal.example'], allowHttp: false, signing: true };

  it('accept https to an allowed host or subdomain', () => {
    assert.equal(assertCallbackUrl('https://hooks.example.com/restores?x=1', policy), 'https://hooks.example.com/restores?x=1');
    assert.equal(assertCallbackUrl('https://a.b.internal.example/h', policy), 'https://a.b.internal.example/h');
    assert.equal(hostAllowed('HOOKS.example.com', policy.allowedHosts), true);
    assert.equal(hostAllowed('internal.example', policy.allowedHosts), false, '*. means subdomains only');
  });

  it('refuse other hosts, http, credentials, non-URLs, and everything while callbacks are off', () => {
    const refused: [string, RegExp][] = [
      ['https://evil.example.org/', /not in CALLBACK_ALLOWED_HOSTS/],
      ['https://hooks.example.com.evil.org/', /not in CALLBACK_ALLOWED_HOSTS/],
      ['http://hooks.example.com/', /must use https/],
      ['https://u:p@hooks.example.com/', /credentials/],
      ['file:///etc/passwd', /must use https/],
      ['not a url', /is not a URL/],
      ['', /at most 2000/],
    ];
    for (const [url, why] of refused) assert.throws(() => assertCallbackUrl(url, policy), why, url);
    assert.throws(() => assertCallbackUrl('https://hooks.example.com/', { ...policy, allowedHosts: [] }), /callbacks are off/);
    assert.throws(() => assertCallbackUrl('https://hooks.example.com/', { ...policy, signing: false }), /callbacks are off/);
    assert.equal(
      assertCallbackUrl('http://127.0.0.1:9/h', { allowedHosts: ['127.0.0.1'], allowHttp: true, signing: true }),
      'http://127.0.0.1:9/h',
    );
  });
});
