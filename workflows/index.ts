export { interactionDataLifecycle } from './lifecycle';
export { interactionDataBulkRestore, interactionDataBulkRestorePreview } from './bulkRestore';
export { interactionDataErasure } from './erasure';
