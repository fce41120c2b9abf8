// Unsaved changes: a screen with edits not saved yet says so, and the window asks before a tab or pipeline switch
// drops them.
import { createContext, useContext, useEffect } from "react";

/** Reports what holds unsaved changes ("the mapping of Demo"), or null when nothing does. */
export const UnsavedContext = createContext<(what: string | null) => void>(() => undefined);

/** Tells the window that `what` holds unsaved changes while `dirty` is true. */
export function useUnsavedGuard(dirty: boolean, what: string): void {
  const report = useContext(UnsavedContext);
  useEffect(() => {
    report(dirty ? what : null);
    return () => report(null);
  }, [dirty, what, report]);
}
