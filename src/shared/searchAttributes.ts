import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The four search attributes of the public contract, kept current on every transition. */
export const InteractionDataState = defineSearchAttributeKey('InteractionDataState', SearchAttributeType.KEYWORD);
export const MessageKindAttr = defineSearchAttributeKey('MessageKind', SearchAttributeType.KEYWORD);
export const MessageTags = defineSearchAttributeKey('MessageTags', SearchAttributeType.KEYWORD_LIST);
export const InteractionDataExpiresAt = defineSearchAttributeKey('InteractionDataExpiresAt', SearchAttributeType.DATETIME);

export const ALL_SEARCH_ATTRIBUTES = [InteractionDataState, MessageKindAttr, MessageTags, InteractionDataExpiresAt] as const;
