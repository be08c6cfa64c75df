/**
 * One attempt to deliver a callback: a signed JSON POST. Any answer but a 2xx, or none within the
 * timeout, is a failure the caller's activity retries (durably, under Temporal's retry policy); the
 * receiver tells deliveries apart by `Interaction-Data-Delivery`, the same on every attempt.
 */
import type { CallbackDelivery } from '../shared/types';
import { SIGNATURE_HEADER, signCallback } from './signature';

const TIMEOUT_MS = 10_000;

export class CallbackRefusedError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`the callback to ${url} was answered ${status}; it is retried`);
    this.name = 'CallbackRefusedError';
  }
}

export async function deliverCallback(delivery: CallbackDelivery, secret: string, now = new Date()): Promise<number> {
  const body = JSON.stringify({ ...delivery.body, event: delivery.event, deliveryId: delivery.deliveryId });
  const response = await fetch(delivery.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'interaction-data-callbacks',
      'interaction-data-event': delivery.event,
      'interaction-data-delivery': delivery.deliveryId,
      [SIGNATURE_HEADER]: signCallback(secret, body, Math.floor(now.getTime() / 1000)),
    },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status > 299) throw new CallbackRefusedError(delivery.url, response.status);
  return response.status;
}
