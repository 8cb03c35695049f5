/**
 * Errors a user can cause (bad file, missing config, unsupported checkpoint…).
 * They carry the file they are about and a hint on what to do, so every surface
 * (CLI, VS Code notification, log) can print one clear message.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** The file or folder the problem is about, when there is one. */
    readonly file?: string,
    /** What the user can do about it. */
    readonly hint?: string,
  ) {
    super(formatUserError(message, file, hint));
  }
}

function formatUserError(message: string, file?: string, hint?: string): string {
  let text = file ? `${file}: ${message}` : message;
  if (hint) text += ` ${hint}`;
  return text;
}

/** Throws a UserError when `condition` is false; for checks on user-provided data. */
export function check(condition: unknown, message: string, file?: string, hint?: string): asserts condition {
  if (!condition) throw new UserError(message, file, hint);
}

/** Thrown when the caller cancelled the work (CancellationToken, AbortSignal). */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(message = 'Cancelled') {
    super(message);
  }
}
