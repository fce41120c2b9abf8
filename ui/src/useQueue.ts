import { useCallback, useEffect, useState } from "react";

/** A list the screen loads on mount, and actions on it that report an outcome and reload it. `fetch` must be stable
 * (wrap it in useCallback). */
export function useQueue<T>(fetch: () => Promise<T>) {
  const [data, setData] = useState<T | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    fetch()
      .then((loaded) => setData(() => loaded))
      .catch((e: unknown) => setError(String(e)));
  }, [fetch]);
  useEffect(load, [load]);

  /** Runs `action`; its outcome, in words, becomes the notice, and the list is loaded again. */
  const act = <R>(action: () => Promise<R>, describe: (outcome: R) => string) => {
    setBusy(true);
    setError(null);
    action()
      .then((outcome) => {
        setNotice(describe(outcome));
        load();
      })
      .catch((e: unknown) => setError(String(e)))
      .finally(() => setBusy(false));
  };

  return { data, load, act, busy, notice, setNotice, error };
}
