// How every command is called: Tauri's invoke, with the engine's typed error turned into a `CommandError`.
import { invoke as tauriInvoke, type InvokeArgs } from "@tauri-apps/api/core";
import type { AppError, ErrorKind } from "./bindings";

/** A command's failure as the engine typed it: `kind` says what happened (busy, invalid_input, not_found, …),
 * `message` what to do about it. `String(error)` is the message. */
export class CommandError extends Error {
  readonly kind: ErrorKind;
  /** The form field the error is about (`entities.0.business_key`), when it is about one. */
  readonly field: string | undefined;

  constructor(error: AppError) {
    super(error.message);
    this.name = "CommandError";
    this.kind = error.kind;
    this.field = error.field;
  }

  override toString(): string {
    return this.message;
  }
}

function isAppError(value: unknown): value is AppError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { kind?: unknown }).kind === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

/** Calls a command; its typed error becomes a `CommandError`. */
export async function invoke<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await tauriInvoke<T>(command, args);
  } catch (e: unknown) {
    throw isAppError(e) ? new CommandError(e) : e;
  }
}

/** Whether a command failed because the pipeline is being run elsewhere (the message names who). */
export function isBusy(error: unknown): error is CommandError {
  return error instanceof CommandError && error.kind === "busy";
}

/** Whether a run stopped before a schema change nobody applied (the Schema screen's Apply lets it). */
export function needsReview(error: unknown): error is CommandError {
  return error instanceof CommandError && error.kind === "needs_review";
}

/** Whether something of that name exists already (an import asks before replacing it). */
export function alreadyExists(error: unknown): error is CommandError {
  return error instanceof CommandError && error.kind === "exists";
}
