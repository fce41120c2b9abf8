import { useState } from "react";
import { runPipeline } from "./api";
import type { EntityCounts, PipelineSummary, RunEvent, RunSummary } from "./bindings";

interface Props {
  pipelines: PipelineSummary[];
  onRunFinished: () => void;
}

interface LiveRun {
  pipeline: string;
  status: "running" | RunSummary["status"];
  entities: RunSummary["entities"];
  rowsPerS: number;
  pageNo: number;
  summary: RunSummary | null;
  error: string | null;
}

/** Applies one progress event to the live view of a run. */
export function applyEvent(run: LiveRun, event: RunEvent): LiveRun {
  switch (event.event) {
    case "started":
      return { ...run, status: "running" };
    case "page":
      return {
        ...run,
        entities: { ...run.entities, [event.entity]: event.counts },
        rowsPerS: event.rowsPerS,
        pageNo: event.pageNo,
      };
    case "entityDone":
      return { ...run, entities: { ...run.entities, [event.entity]: event.counts } };
    case "finished":
      return {
        ...run,
        status: event.summary.status,
        entities: event.summary.entities,
        summary: event.summary,
        error: event.summary.error,
      };
  }
}

const COLUMNS: (keyof EntityCounts)[] = ["fetched", "inserted", "updated", "skipped", "failed", "pending"];

export function PipelinesScreen({ pipelines, onRunFinished }: Props) {
  const [live, setLive] = useState<LiveRun | null>(null);
  const running = live?.status === "running";

  const start = (name: string) => {
    const initial: LiveRun = {
      pipeline: name,
      status: "running",
      entities: {},
      rowsPerS: 0,
      pageNo: 0,
      summary: null,
      error: null,
    };
    setLive(initial);
    runPipeline(name, (event) => setLive((run) => (run ? applyEvent(run, event) : run)))
      .then((summary) => setLive((run) => (run ? { ...run, status: summary.status, summary, entities: summary.entities } : run)))
      .catch((e: unknown) => setLive((run) => (run ? { ...run, status: "failed", error: String(e) } : run)))
      .finally(onRunFinished);
  };

  return (
    <section className="screen">
      <h1>Pipelines</h1>
      <table className="grid" data-testid="pipelines">
        <thead>
          <tr>
            <th>Name</th>
            <th>Source</th>
            <th>Target</th>
            <th>Last run</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {pipelines.map((p) => (
            <tr key={p.name} data-testid={`pipeline-${p.name}`}>
              <td className="name">{p.name}</td>
              <td>{p.source_kind}</td>
              <td>{p.target_kind}</td>
              <td>{p.last_run ? `${p.last_run.status} · ${new Date(p.last_run.started_at).toLocaleString()}` : "never"}</td>
              <td>
                <button type="button" data-testid={`run-${p.name}`} disabled={running} onClick={() => start(p.name)}>
                  Run
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {pipelines.length === 0 && <p className="muted">No pipelines yet.</p>}
      {live && (
        <section className="run" aria-live="polite">
          <h2>
            Run of {live.pipeline}: <span data-testid="run-status" className={`status ${live.status}`}>{live.status}</span>
          </h2>
          {running && (
            <p className="muted" data-testid="run-progress">
              page {live.pageNo} · {Math.round(live.rowsPerS).toLocaleString()} rows/s
            </p>
          )}
          {live.error && (
            <p role="alert" className="error" data-testid="run-error">
              {live.error}
            </p>
          )}
          <table className="grid counts">
            <thead>
              <tr>
                <th>Entity</th>
                {COLUMNS.map((c) => (
                  <th key={c}>{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {Object.entries(live.entities).map(([entity, counts]) =>
                counts === undefined ? null : (
                <tr key={entity}>
                  <td>{entity}</td>
                  {COLUMNS.map((c) => (
                    <td key={c} className="num" data-testid={`count-${entity}-${c}`}>
                      {counts[c].toLocaleString("en-US")}
                    </td>
                  ))}
                </tr>
                ),
              )}
            </tbody>
          </table>
          {live.summary && (
            <p className="muted" data-testid="run-summary">
              {live.summary.status} in {(live.summary.duration_ms / 1000).toFixed(1)} s · run {live.summary.run_id}
            </p>
          )}
        </section>
      )}
    </section>
  );
}
