/** Where code below the CLI says things: a line worth a warning, or detail for --verbose. The CLI's reporter is one. */
export interface Log {
  /** Something a person should know (stderr), even under --quiet. */
  warn(message: string): void;
  /** A fact worth a line, not a problem (stderr); nothing under --quiet. */
  note?(message: string): void;
  /** Detail under --verbose (stderr). */
  debug(message: string): void;
}
