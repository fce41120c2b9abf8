import { useEffect, useState } from "react";
import {
  busyPipelines,
  cancelRun,
  deletePipeline,
  exportPipeline,
  isBusy,
  needsReview,
  pauseRun,
  previewPipeline,
  runPipeline,
  savePipelineFile,
  setPipelineEnabled,
} from "./api";
import { when } from "./format";
import type { BusyPipeline, EntityCounts, PipelineSummary, Preview, RunEvent, RunSummary, StageTimes } from "./bindings";

interface Props {
  pipelines: PipelineSummary[];
  onRunFinished: () => void;
  /** Opens the schema review of a pipeline (a run stopped for it). */
  onReview: (pipeline: string) => void;
  /** Opens the pipeline's form, prefilled: to edit it, or to save a copy under a new name. */
  onEdit: (pipeline: string, mode: "edit" | "clone") => void;
  /** Opens the Failed records screen of a pipeline. */
  onOpenFailed: (pipeline: string) => void;
}

/** One point of the throughput chart: seconds since the run started, rows per second. */
export interface RateSample {
  t: number;
  rowsPerS: number;
}

export interface LiveRun {
  pipeline: string;
  status: RunSummary["status"];
  entities: RunSummary["entities"];
  rowsPerS: number;
  pageNo: number;
  /** The entity the last page belonged to. */
  current: string | null;
  /** Records each entity has in all, when the source says. */
  expected: Record<string, number>;
  /** Write calls a REST target has had in this run (null for a database target). */
  targetCalls?: number | null;
  startedAt: number;
  rate: RateSample[];
  /** A pause was asked for and the run has not stopped yet. */
  pausing: boolean;
  /** The run lost its connection to the target (or source) and is trying again: what it says, or null. */
  waiting: string | null;
  summary: RunSummary | null;
  error: string | null;
  /** The run stopped before a schema change nobody applied: the review is offered. */
  review: boolean;
  /** Per entity: each stage's time over this run's batches and the records of those batches. */
  stages: Record<string, { times: StageTimes; records: number }>;
}

/** Samples kept for the chart (older ones are thinned, so a long run keeps its whole shape). */
const MAX_SAMPLES = 240;

function addSample(rate: RateSample[], sample: RateSample): RateSample[] {
  const next = [...rate, sample];
  return next.length > MAX_SAMPLES ? next.filter((_, i) => i % 2 === 0 || i === next.length - 1) : next;
}

/** A REST target's write calls so far and their rate over the run's seconds. */
export function writeCallsText(calls: number, seconds: number): string {
  const rate = seconds > 0 ? calls / seconds : 0;
  return `${calls.toLocaleString("en-US")} write calls to the target (${rate.toFixed(rate < 10 ? 1 : 0)}/s)`;
}

/** Seconds left for an entity at the current rate, or null when unknown. */
export function etaSeconds(run: LiveRun, entity: string): number | null {
  const expected = run.expected[entity];
  const fetched = run.entities[entity]?.fetched ?? 0;
  if (expected === undefined || run.rowsPerS <= 0 || run.current !== entity) return null;
  return Math.max(0, (expected - fetched) / run.rowsPerS);
}

/** Applies one progress event to the live view of a run. */
export function applyEvent(run: LiveRun, event: RunEvent): LiveRun {
  switch (event.event) {
    case "pending":
      return { ...run, status: "pending" };
    case "started":
      return { ...run, status: "running" };
    case "waiting":
      return {
        ...run,
        waiting: `${event.entity}: waiting for the ${event.on} (${event.waited_s} s of ${event.budget_s} s) — ${event.message}`,
      };
    case "page":
      return {
        ...run,
        waiting: null,
        entities: { ...run.entities, [event.entity]: event.counts },
        rowsPerS: event.rows_per_s,
        targetCalls: event.target_calls,
        pageNo: event.page_no,
        current: event.entity,
        expected: event.expected === null ? run.expected : { ...run.expected, [event.entity]: event.expected },
        rate: addSample(run.rate, { t: (Date.now() - run.startedAt) / 1000, rowsPerS: event.rows_per_s }),
        stages: { ...run.stages, [event.entity]: { times: event.stages, records: event.stage_records } },
      };
    case "entity_done":
      // Always delivered (page events are thinned to a few a second), so short runs get a chart too.
      return {
        ...run,
        entities: { ...run.entities, [event.entity]: event.counts },
        rate: addSample(run.rate, { t: (Date.now() - run.startedAt) / 1000, rowsPerS: run.rowsPerS }),
      };
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

const COLUMNS: (keyof EntityCounts)[] = ["fetched", "inserted", "updated", "skipped", "failed", "pending", "conflicts"];

/** What of a pipeline waits for a person, in words; "all clear" when nothing does. */
export function healthText(p: PipelineSummary): string[] {
  const items: string[] = [];
  if (p.failed_records > 0) items.push(`${p.failed_records.toLocaleString("en-US")} failed record(s)`);
  if (p.waiting_children > 0) items.push(`${p.waiting_children.toLocaleString("en-US")} waiting for a parent`);
  if (p.open_conflicts > 0) items.push(`${p.open_conflicts.toLocaleString("en-US")} open conflict(s)`);
  return items;
}

function Health({ pipeline }: { pipeline: PipelineSummary }) {
  const items = healthText(pipeline);
  if (items.length === 0) return <span className="muted">all clear</span>;
  return <span className="warning-text">{items.join(" · ")}</span>;
}

/** How often the screen asks which pipelines another run holds. */
const BUSY_POLL_MS = 2000;

export function PipelinesScreen({ pipelines, onRunFinished, onReview, onEdit, onOpenFailed }: Props) {
  const [live, setLive] = useState<LiveRun | null>(null);
  const [exported, setExported] = useState<{ name: string; text: string; saved?: string } | null>(null);
  const [busy, setBusy] = useState<BusyPipeline[]>([]);
  // The pipeline whose Delete… asks for confirmation, and what the last lifecycle action said.
  const [deleting, setDeleting] = useState<string | null>(null);
  const [lifecycle, setLifecycle] = useState<{ text: string; failed: boolean } | null>(null);
  const act = (action: Promise<unknown>, done: string) => {
    action
      .then(() => setLifecycle({ text: done, failed: false }))
      .catch((e: unknown) => setLifecycle({ text: String(e), failed: true }))
      .finally(onRunFinished);
  };
  // A preview (dry run) of one pipeline: going (null result), done, or failed.
  const [preview, setPreview] = useState<{ pipeline: string; result: Preview | null; error: string | null } | null>(
    null,
  );
  // A start the engine refused because another run holds the pipeline: its message names the holder.
  const [refused, setRefused] = useState<{ pipeline: string; message: string } | null>(null);
  const running = live?.status === "running" || live?.status === "pending";
  // A completed run that left failed records says so (amber, with a way to them), never a plain green "completed".
  const withFailed = live?.summary?.status === "completed" && live.summary.outcome !== "completed";

  useEffect(() => {
    const poll = () => {
      busyPipelines()
        .then((held) => {
          setBusy(held);
          setRefused((r) => (r && held.some((b) => b.pipeline === r.pipeline) ? r : null));
        })
        .catch(() => undefined);
    };
    poll();
    const timer = window.setInterval(poll, BUSY_POLL_MS);
    return () => window.clearInterval(timer);
  }, []);

  // This window's own run holds its pipeline too; that one is shown as the live run instead.
  const heldElsewhere = (name: string) =>
    running && live?.pipeline === name ? undefined : busy.find((b) => b.pipeline === name);

  const start = (name: string, confirmDeletes = false) => {
    const initial: LiveRun = {
      pipeline: name,
      status: "running",
      entities: {},
      rowsPerS: 0,
      pageNo: 0,
      current: null,
      expected: {},
      startedAt: Date.now(),
      rate: [],
      pausing: false,
      waiting: null,
      summary: null,
      error: null,
      review: false,
      stages: {},
    };
    setLive(initial);
    setRefused(null);
    runPipeline(name, (event) => setLive((run) => (run ? applyEvent(run, event) : run)), confirmDeletes)
      .finally(() => {
        // This window's run has let go of the pipeline: its Run button is free now, not at the next poll.
        setBusy((held) => held.filter((b) => b.pipeline !== name));
      })
      .then((summary) =>
        setLive((run) =>
          run ? { ...run, status: summary.status, summary, entities: summary.entities, error: summary.error } : run,
        ),
      )
      .catch((e: unknown) => {
        if (isBusy(e)) {
          // Not a failed run: none started. The Run button says so, with who holds the pipeline.
          setLive(null);
          setRefused({ pipeline: name, message: e.message });
          return;
        }
        const review = needsReview(e);
        setLive((run) => (run ? { ...run, status: "failed", error: String(e), review } : run));
      })
      .finally(onRunFinished);
  };

  return (
    <section className="screen">
      <h1>Pipelines</h1>
      <table className="grid" data-testid="pipelines">
        <thead>
          <tr>
            <th>Name</th>
            <th>Source → target</th>
            <th>Last run</th>
            <th>Next run</th>
            <th title="Failed records, children waiting for their parent, and conflicts waiting for you">Needs you</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {pipelines.map((p) => (
            <tr key={p.name} data-testid={`pipeline-${p.name}`}>
              <td className="name">
                {p.name}
                {p.disabled && (
                  <span className="muted" data-testid={`disabled-${p.name}`}>
                    {" "}
                    (disabled)
                  </span>
                )}
              </td>
              <td>
                {p.source_kind} → {p.target_kind}
              </td>
              <td data-testid={`last-run-${p.name}`}>
                {p.last_run ? (
                  <>
                    <span className={`status ${p.last_run.status}`}>{p.last_run.status}</span>{" "}
                    <span className="muted">{when(p.last_run.started_at)}</span>
                  </>
                ) : (
                  "never"
                )}
              </td>
              <td data-testid={`next-run-${p.name}`}>{p.next_run ? when(p.next_run) : <span className="muted">—</span>}</td>
              <td data-testid={`health-${p.name}`}>
                <Health pipeline={p} />
              </td>
              <td>
                <div className="actions">
                  <RunButton
                    pipeline={p}
                    busy={heldElsewhere(p.name)}
                    refused={refused?.pipeline === p.name ? refused.message : null}
                    running={running}
                    onRun={(confirmDeletes) => start(p.name, confirmDeletes)}
                  />{" "}
                  <button
                    type="button"
                    className="secondary"
                    data-testid={`preview-${p.name}`}
                    disabled={running || heldElsewhere(p.name) !== undefined || preview?.result === null}
                    title={
                      (heldElsewhere(p.name) && `Busy: running in ${heldElsewhere(p.name)?.description ?? "another process"}`) ||
                      (running ? "A run is going in this window" : preview?.result === null ? "A preview is under way" : "What a run would insert, update, delete and skip, with sample rows; nothing is written")
                    }
                    onClick={() => {
                      setPreview({ pipeline: p.name, result: null, error: null });
                      previewPipeline(p.name, () => undefined)
                        .then((result) => setPreview({ pipeline: p.name, result, error: null }))
                        .catch((e: unknown) => setPreview({ pipeline: p.name, result: null, error: String(e) }));
                    }}
                  >
                    Preview
                  </button>{" "}
                  <button
                    type="button"
                    className="secondary"
                    data-testid={`export-${p.name}`}
                    onClick={() => {
                      exportPipeline(p.name)
                        .then((text) => setExported({ name: p.name, text }))
                        .catch((e: unknown) => setExported({ name: p.name, text: `# ${String(e)}` }));
                    }}
                  >
                    Export
                  </button>
                  <button
                    type="button"
                    className="secondary"
                    data-testid={`edit-${p.name}`}
                    title="Change its source, target or entities in the form; its schedule and history stay"
                    onClick={() => onEdit(p.name, "edit")}
                  >
                    Edit
                  </button>{" "}
                  <button
                    type="button"
                    className="secondary"
                    data-testid={`clone-${p.name}`}
                    title="A copy under a new name, without its schedule or history"
                    onClick={() => onEdit(p.name, "clone")}
                  >
                    Clone
                  </button>{" "}
                  <button
                    type="button"
                    className="secondary"
                    data-testid={`toggle-${p.name}`}
                    title={
                      p.disabled
                        ? "Switched off: nothing runs it (Run, its schedule, syncflow run) until it is enabled"
                        : "Switch off: no run, no scheduled run, until it is enabled again"
                    }
                    onClick={() =>
                      act(
                        setPipelineEnabled(p.name, p.disabled),
                        p.disabled ? `${p.name} is enabled.` : `${p.name} is disabled: nothing runs it until it is enabled.`,
                      )
                    }
                  >
                    {p.disabled ? "Enable" : "Disable"}
                  </button>{" "}
                  <button
                    type="button"
                    className="danger"
                    data-testid={`delete-${p.name}`}
                    onClick={() => setDeleting(p.name)}
                  >
                    Delete…
                  </button>
                  {deleting === p.name && (
                    <div className="confirm" role="dialog" aria-label={`Delete ${p.name}`} data-testid="confirm-delete">
                      <p>
                        Delete {p.name} from the console: its definition, schedule, run history, failed records and
                        conflicts. The target is not touched: its tables and rows stay as they are.
                      </p>
                      <button
                        type="button"
                        className="danger"
                        data-testid="confirm-delete-yes"
                        onClick={() => {
                          setDeleting(null);
                          act(deletePipeline(p.name), `${p.name} was deleted; its target tables were left as they are.`);
                        }}
                      >
                        Delete
                      </button>{" "}
                      <button type="button" className="secondary" onClick={() => setDeleting(null)}>
                        Keep it
                      </button>
                    </div>
                  )}
                  <BusyNote
                    pipeline={p.name}
                    busy={heldElsewhere(p.name)}
                    refused={refused?.pipeline === p.name ? refused.message : null}
                  />
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {pipelines.length === 0 && <p className="muted">No pipelines yet.</p>}
      {lifecycle && (
        <p className={lifecycle.failed ? "error" : "notice"} role="status" data-testid="lifecycle-note">
          {lifecycle.text}
        </p>
      )}
      {preview && <PreviewPanel {...preview} onClose={() => setPreview(null)} />}
      {exported && (
        <figure>
          <figcaption className="muted">
            {exported.name}.toml — the pipeline file (secrets appear as references only)
          </figcaption>
          <button
            type="button"
            data-testid="save-pipeline-file"
            onClick={() => {
              const name = exported.name;
              savePipelineFile(name)
                .then((path) => {
                  if (path) setExported((e) => (e && e.name === name ? { ...e, saved: `Saved ${path}.` } : e));
                })
                .catch((e: unknown) =>
                  setExported((x) => (x && x.name === name ? { ...x, saved: `Not saved: ${String(e)}` } : x)),
                );
            }}
          >
            Save as…
          </button>
          {exported.saved && (
            <p className="notice" data-testid="pipeline-file-saved">
              {exported.saved}
            </p>
          )}
          <pre className="code" data-testid="export-text">
            {exported.text}
          </pre>
        </figure>
      )}
      {live && (
        <section className="run" aria-live="polite">
          <h2>
            Run of {live.pipeline}:{" "}
            <span data-testid="run-status" className={`status ${withFailed ? "with-failed" : live.status}`}>
              {withFailed ? live.summary?.outcome : live.status}
            </span>
            {withFailed && (
              <>
                {" "}
                <button type="button" className="secondary" data-testid="open-failed" onClick={() => onOpenFailed(live.pipeline)}>
                  See the failed records
                </button>
              </>
            )}
          </h2>
          {running && (
            <button
              type="button"
              className="secondary"
              data-testid="pause-run"
              disabled={live.pausing}
              onClick={() => {
                setLive((run) => (run ? { ...run, pausing: true } : run));
                pauseRun(live.pipeline).catch((e: unknown) =>
                  setLive((run) => (run ? { ...run, pausing: false, error: String(e) } : run)),
                );
              }}
            >
              {live.pausing ? "Pausing after the current page…" : "Pause"}
            </button>
          )}
          {running && (
            <button
              type="button"
              className="secondary"
              data-testid="cancel-run"
              disabled={live.pausing}
              onClick={() => {
                setLive((run) => (run ? { ...run, pausing: true } : run));
                cancelRun(live.pipeline).catch((e: unknown) =>
                  setLive((run) => (run ? { ...run, pausing: false, error: String(e) } : run)),
                );
              }}
            >
              Cancel
            </button>
          )}
          {live.status === "paused" && (
            <button type="button" data-testid="resume-run" onClick={() => start(live.pipeline)}>
              Resume
            </button>
          )}
          {running && (
            <p className="muted" data-testid="run-progress">
              {live.current ?? ""} page {live.pageNo} · {Math.round(live.rowsPerS).toLocaleString("en-US")} rows/s
              {typeof live.targetCalls === "number" && (
                <span data-testid="target-calls"> · {writeCallsText(live.targetCalls, (Date.now() - live.startedAt) / 1000)}</span>
              )}
            </p>
          )}
          <RateChart samples={live.rate} />
          <StageRates stages={live.stages} />
          {live.waiting && live.status === "running" && (
            <p role="status" className="warning" data-testid="run-waiting">
              {live.waiting}
            </p>
          )}
          {live.error && (
            <p role="alert" className="error" data-testid="run-error">
              {live.error}
            </p>
          )}
          {live.review && !running && (
            <button type="button" data-testid="review-schema" onClick={() => onReview(live.pipeline)}>
              Review schema
            </button>
          )}
          {!running && heldDeletes(pipelines, live.pipeline) > 0 && (
            <button
              type="button"
              className="danger"
              data-testid="confirm-deletes-run"
              title="Nothing was deleted. Confirm only if the source really lost these records; if it was wrong, fix it and run again."
              onClick={() => start(live.pipeline, true)}
            >
              Confirm deletes ({heldDeletes(pipelines, live.pipeline).toLocaleString("en-US")} rows)
            </button>
          )}
          <table className="grid counts">
            <thead>
              <tr>
                <th>Entity</th>
                <th>Progress</th>
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
                  <td data-testid={`progress-${entity}`}>
                    <Progress run={live} entity={entity} fetched={counts.fetched} />
                  </td>
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

/** Rows the delete guard held back in a pipeline's last run (0: none). */
export function heldDeletes(pipelines: PipelineSummary[], name: string): number {
  const last = pipelines.find((p) => p.name === name)?.last_run;
  return last?.status === "failed" ? last.held_deletes : 0;
}

/**
 * Run, or why not: another run holds the pipeline (named, with since when), or a run is going in this window. When
 * the last run ended with deletes held by the delete guard, a second button confirms them.
 */
export function RunButton({
  pipeline,
  busy,
  refused = null,
  running,
  onRun,
}: {
  pipeline: PipelineSummary;
  busy: BusyPipeline | undefined;
  /** Why the engine refused the last start (the pipeline is busy elsewhere); the button may be pressed again. */
  refused?: string | null;
  running: boolean;
  onRun: (confirmDeletes: boolean) => void;
}) {
  const held = heldDeletes([pipeline], pipeline.name);
  const blocked = pipeline.disabled
    ? "Disabled: enable it to run"
    : busy
      ? `Running in ${busy.description}`
      : running
        ? "A run is going in this window"
        : null;
  return (
    <>
      <button
        type="button"
        data-testid={`run-${pipeline.name}`}
        disabled={blocked !== null}
        title={blocked ?? refused ?? undefined}
        onClick={() => onRun(false)}
      >
        {busy || refused ? "Busy" : "Run"}
      </button>
      {held > 0 && (
        <button
          type="button"
          className="danger"
          data-testid={`confirm-deletes-${pipeline.name}`}
          disabled={blocked !== null}
          title="The last run would have deleted more rows than max_delete_fraction allows; nothing was deleted. Confirm only if the source really lost them."
          onClick={() => onRun(true)}
        >
          Confirm deletes ({held.toLocaleString("en-US")} rows)
        </button>
      )}
    </>
  );
}

/** Who holds a pipeline that another run holds, under its buttons. */
function BusyNote({
  pipeline,
  busy,
  refused,
}: {
  pipeline: string;
  busy: BusyPipeline | undefined;
  refused: string | null;
}) {
  if (!busy && !refused) return null;
  return (
    <span className="busy muted" role="status" data-testid={`busy-${pipeline}`}>
      {busy ? `Running in ${busy.description}` : `Not started: ${refused ?? ""}`}
    </span>
  );
}

function formatEta(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s left`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.ceil(seconds % 60)} s left`;
}

/** A bar of fetched ÷ expected (when the source says how many), with the time left at the current rate. */
function Progress({ run, entity, fetched }: { run: LiveRun; entity: string; fetched: number }) {
  const expected = run.expected[entity];
  if (expected === undefined || expected === 0) return <span className="muted">{fetched.toLocaleString("en-US")}</span>;
  const share = Math.min(1, fetched / expected);
  const eta = etaSeconds(run, entity);
  return (
    <span className="progress" title={`${fetched.toLocaleString("en-US")} of ${expected.toLocaleString("en-US")}`}>
      <span className="bar">
        <span className="fill" style={{ width: `${(share * 100).toFixed(1)}%` }} />
      </span>
      <span className="pct">{Math.round(share * 100)} %</span>
      {eta !== null && run.status === "running" && <span className="eta">{formatEta(eta)}</span>}
    </span>
  );
}

/** Rows per second over the run, as a line. */
/** Rows per second each stage handles (the run's records / that stage's own time, summed over the entities),
 * like a step's rate in Apache Hop: the slowest stage is what paces the run. Null before the first batch. */
export function stageRates(stages: LiveRun["stages"]): { stage: string; rowsPerS: number }[] | null {
  const all = Object.values(stages);
  if (all.length === 0) return null;
  const records = all.reduce((n, s) => n + s.records, 0);
  const ms = (key: "fetch_ms" | "transform_ms" | "ingest_ms") => all.reduce((n, s) => n + s.times[key], 0);
  return (
    [
      ["fetch", ms("fetch_ms")],
      ["transform", ms("transform_ms")],
      ["ingest", ms("ingest_ms")],
    ] as const
  ).map(([stage, spent]) => ({ stage, rowsPerS: spent > 0 ? (records * 1000) / spent : Infinity }));
}

function StageRates({ stages }: { stages: LiveRun["stages"] }) {
  const rates = stageRates(stages);
  if (!rates) return null;
  const slowest = rates.reduce((a, b) => (b.rowsPerS < a.rowsPerS ? b : a));
  return (
    <p className="muted" data-testid="stage-rates" title="Records per second of each stage's own time; the slowest stage paces the run">
      {rates.map((r, i) => (
        <span key={r.stage}>
          {i > 0 && " · "}
          <span className={r === slowest ? "slowest" : undefined}>
            {r.stage} {Number.isFinite(r.rowsPerS) ? Math.round(r.rowsPerS).toLocaleString("en-US") : "—"} rows/s
          </span>
        </span>
      ))}
      {" "}
      (slowest: {slowest.stage})
    </p>
  );
}

export function RateChart({ samples }: { samples: RateSample[] }) {
  if (samples.length < 2) return null;
  // The plot sits right of the rows/s labels and above the seconds labels.
  const width = 520;
  const height = 140;
  const left = 64;
  const top = 20;
  const bottom = 22;
  const plotW = width - left - 24;
  const plotH = height - bottom - top;
  const t0 = samples[0]?.t ?? 0;
  const tMax = samples[samples.length - 1]?.t ?? t0;
  const span = Math.max(tMax - t0, 0.001);
  const rMax = Math.max(...samples.map((s) => s.rowsPerS), 1);
  const x = (t: number) => left + ((t - t0) / span) * plotW;
  const y = (r: number) => top + plotH - (r / rMax) * plotH;
  const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.rowsPerS).toFixed(1)}`).join(" ");
  const rows = (r: number) => Math.round(r).toLocaleString("en-US");
  return (
    <figure className="rate-chart">
      <svg data-testid="rate-chart" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img">
        <title>rows per second over the run's seconds</title>
        <g className="axis" data-testid="rate-axis-y">
          <line x1={left} y1={top} x2={left} y2={top + plotH} />
          {[rMax, rMax / 2, 0].map((r) => (
            <text key={r} x={left - 6} y={y(r) + 4} textAnchor="end">
              {rows(r)}
            </text>
          ))}
          <text x={left} y={12} textAnchor="middle" className="unit">
            rows/s
          </text>
        </g>
        <g className="axis" data-testid="rate-axis-x">
          <line x1={left} y1={top + plotH} x2={left + plotW} y2={top + plotH} />
          {(
            [
              [t0, "start"],
              [t0 + span / 2, "middle"],
              [tMax, "end"],
            ] as const
          ).map(([t, anchor]) => (
            <text key={t} x={x(t)} y={height - 6} textAnchor={anchor}>
              {`${(t - t0).toFixed(1)} s`}
            </text>
          ))}
        </g>
        <polyline points={points} fill="none" stroke="#2563eb" strokeWidth="2" />
      </svg>
      <figcaption className="muted">
        rows/s over {(tMax - t0).toFixed(1)} s · peak {rows(rMax)}
      </figcaption>
    </figure>
  );
}

/** A preview's counts per entity and sample rows (each with what a run would do to it). */
function PreviewPanel({
  pipeline,
  result,
  error,
  onClose,
}: {
  pipeline: string;
  result: Preview | null;
  error: string | null;
  onClose: () => void;
}) {
  return (
    <section className="run" data-testid="preview">
      <h2>
        Preview of {pipeline}{" "}
        <button type="button" className="secondary" onClick={onClose} data-testid="preview-close">
          Close
        </button>
      </h2>
      <p className="muted">A dry run: nothing is written to the target or beside it, and no table is created.</p>
      {!result && !error && <p className="muted">Reading the source and comparing with the target…</p>}
      {error && (
        <p role="alert" className="error" data-testid="preview-error">
          {error}
        </p>
      )}
      {result && (
        <>
          <table className="grid counts">
            <thead>
              <tr>
                <th>Entity</th>
                <th>would insert</th>
                <th>update</th>
                <th>delete</th>
                <th>skip (unchanged)</th>
                <th>fail</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(result.summary.entities).map(([entity, c]) =>
                c === undefined ? null : (
                  <tr key={entity} data-testid={`preview-counts-${entity}`}>
                    <td>{entity}</td>
                    <td className="num" data-testid={`preview-${entity}-inserted`}>{c.inserted.toLocaleString("en-US")}</td>
                    <td className="num" data-testid={`preview-${entity}-updated`}>{c.updated.toLocaleString("en-US")}</td>
                    <td className="num" data-testid={`preview-${entity}-deleted`}>{c.deleted.toLocaleString("en-US")}</td>
                    <td className="num" data-testid={`preview-${entity}-skipped`}>{c.skipped.toLocaleString("en-US")}</td>
                    <td className="num" data-testid={`preview-${entity}-failed`}>{c.failed.toLocaleString("en-US")}</td>
                  </tr>
                ),
              )}
            </tbody>
          </table>
          {result.summary.error && (
            <p role="alert" className="error" data-testid="preview-error">
              {result.summary.error}
            </p>
          )}
          {result.entities.map((e) => (
            <figure key={e.entity} className="sample" data-testid={`preview-sample-${e.entity}`}>
              <figcaption className="muted">
                {e.entity} → {e.table}: the first rows as they would be written
              </figcaption>
              <div className="scroll-x">
                <table className="grid">
                  <thead>
                    <tr>
                      <th>action</th>
                      {e.columns.map((c) => (
                        <th key={c}>{c}</th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {e.rows.map((r, i) => (
                      <tr key={i}>
                        <td className={`action ${r.action}`} data-testid={`preview-action-${e.entity}-${i}`}>
                          {r.action}
                        </td>
                        {r.values.map((v, j) => (
                          <td key={j}>{shortValue(v)}</td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </figure>
          ))}
        </>
      )}
    </section>
  );
}

/** A sample value as a cell shows it: null as ∅, text as is, anything else as JSON; long ones cut at 40 characters. */
export function shortValue(value: unknown): string {
  const text = value === null ? "∅" : typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}
