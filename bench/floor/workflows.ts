/**
 * The least an actor can be, for bench:temporal-floor: started by a signal, `steps` activities one
 * after another, each followed by a search-attribute upsert (a state shown), then asleep with no timer,
 * as an expired actor is. What the dev server spends on it is the floor under any actor's expiry.
 */
import { condition, defineSignal, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { InteractionDataState } from '../../src/shared/searchAttributes';

export const floorStop = defineSignal<[]>('stop');
const { step } = proxyActivities<{ step(n: number): Promise<number> }>({ startToCloseTimeout: '1 minute' });

export async function floorActor(steps: number): Promise<void> {
  let stopped = false;
  setHandler(floorStop, () => {
    stopped = true;
  });
  await condition(() => stopped);
  for (let n = 1; n <= steps; n += 1) {
    await step(n);
    upsertSearchAttributes([{ key: InteractionDataState, value: n === steps ? 'expired' : `step-${n}` }]);
  }
  await condition(() => false);
}
