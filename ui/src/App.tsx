import { useCallback, useEffect, useState } from "react";
import { listPipelines } from "./api";
import type { PipelineSummary } from "./bindings";
import { PipelinesScreen } from "./PipelinesScreen";

export function App() {
  const [pipelines, setPipelines] = useState<PipelineSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(() => {
    listPipelines()
      .then((list) => {
        setPipelines(list);
        setError(null);
      })
      .catch((e: unknown) => setError(String(e)));
  }, []);

  useEffect(refresh, [refresh]);

  return (
    <div className="app">
      <header className="topbar">
        <span className="logo">SyncFlow Console</span>
        <nav>
          <span className="tab active">Pipelines</span>
        </nav>
      </header>
      <main>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        {pipelines === null && !error && <p className="muted">Loading pipelines…</p>}
        {pipelines && <PipelinesScreen pipelines={pipelines} onRunFinished={refresh} />}
      </main>
    </div>
  );
}
