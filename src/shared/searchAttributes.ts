import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The search attributes of the public contract, kept current on every transition. */
export const InteractionDataState = defineSearchAttributeKey('InteractionDataState', SearchAttributeType.KEYWORD);
export const MessageKindAttr = defineSearchAttributeKey('MessageKind', SearchAttributeType.KEYWORD);
export const MessageTags = defineSearchAttributeKey('MessageTags', SearchAttributeType.KEYWORD_LIST);
export const InteractionDataExpiresAt = defineSearchAttributeKey('InteractionDataExpiresAt', SearchAttributeType.DATETIME);

/** Set while a step cannot proceed without an operator: the failure's type, e.g. `ChunkIntegrityError`. */
export const InteractionDataProblem = defineSearchAttributeKey('InteractionDataProblem', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [
  InteractionDataState,
  MessageKindAttr,
  MessageTags,
  InteractionDataExpiresAt,
  InteractionDataProblem,
] as const;
