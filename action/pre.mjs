// The Action's pre step (action.yml runs.pre), at the job's start: index.mjs sees it was started
// from this file, keeps the start time for the main step and marks the deployment in progress.
await import('./index.mjs');
