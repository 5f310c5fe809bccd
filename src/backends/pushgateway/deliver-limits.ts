/**
 * How many kept records of one group one write carries at most (deliver.ts, deliverMany): half of
 * the identities a group remembers (REMEMBERED_RECORDS in apply.ts, checked there), so that after a
 * crash between a write and the removal of its records' files every one of them is still
 * remembered when they are sent again, and counted once. Apart from deliver.ts so that opening the
 * backend does not load the merge.
 */
export const MERGED_RECORDS = 50;
