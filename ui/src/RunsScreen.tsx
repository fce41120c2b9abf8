import { useCallback, useEffect, useState } from "react";
import { useUnsavedGuard } from "./unsaved";
import {
  alertWebhook,
  cancelRun,
  listRuns,
  pauseRun,
  pipelineSchedule,
  runLog,
  runPipeline,
  saveAlertWebhook,
  saveSchedule,
  schedulePreview,
  testAlert,
  undoPreview,
  undoRun,
} from "./api";
import { when } from "./format";
import type { LogLine, RunHistoryRow, WebhookSource, RunsView, Schedule, SchedulePreview, ScheduleView, StageTimes, UndoReport } from "./bindings";

interface Props {
  pipeline: string;
}

/** Statuses a run can be continued from (run again = resume from the checkpoint). */
const RESUMABLE = new Set(["paused", "interrupted", "failed"]);

/** Whether the run changed its target (only such a run can be undone). */
function changedTarget(row: RunHistoryRow): boolean {
  const c = row.counts;
  return c.inserted + c.updated + c.deleted + c.conflicts > 0;
}

/** What undoing a run changes, in words (the confirmation and the notice after it). */
export function undoText(report: UndoReport): string[] {
  const n = (x: number) => x.toLocaleString("en-US");
  const lines = report.tables.map(
    (t) => `${t.table}: ${n(t.removed)} row(s) the run inserted removed, ${n(t.restored)} row(s) it updated or deleted restored`,
  );
  const w = report.withdrawn;
  const filed = [
    w.failed_records > 0 ? `${n(w.failed_records)} failed record(s)` : null,
    w.waiting_children > 0 ? `${n(w.waiting_children)} waiting child record(s)` : null,
    w.conflicts > 0 ? `${n(w.conflicts)} open conflict(s)` : null,
  ].filter((x): x is string => x !== null);
  if (filed.length > 0) lines.push(`Withdrawn with the run: ${filed.join(", ")}.`);
  return lines;
}

/** The runs screen: jobs now (with pause / cancel), the history of runs (with resume and undo), and the schedule
 * editor. */
export function RunsScreen({ pipeline }: Props) {
  const [runs, setRuns] = useState<RunsView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [undoing, setUndoing] = useState<UndoReport | null>(null);
  const [undone, setUndone] = useState<UndoReport | null>(null);
  // The run whose log is open: its lines once read, or what went wrong reading them.
  const [log, setLog] = useState<{ runId: string; lines: LogLine[] | null; error: string | null } | null>(null);
  const openLog = (runId: string) => {
    setLog({ runId, lines: null, error: null });
    runLog(runId)
      .then((lines) => setLog({ runId, lines, error: null }))
      .catch((e: unknown) => setLog({ runId, lines: null, error: String(e) }));
  };

  const refresh = useCallback(() => {
    listRuns(null)
      .then((view) => {
        setRuns(view);
        setError(null);
      })
      .catch((e: unknown) => setError(String(e)));
  }, []);

  // States change live: a job pausing, a scheduled job starting.
  useEffect(() => {
    refresh();
    const timer = window.setInterval(refresh, 1000);
    return () => window.clearInterval(timer);
  }, [refresh]);

  const act = (action: Promise<unknown>) => {
    action.catch((e: unknown) => setError(String(e))).finally(refresh);
  };

  const askUndo = (runId: string) => {
    setUndone(null);
    undoPreview(runId)
      .then((report) => {
        setUndoing(report);
        setError(null);
      })
      .catch((e: unknown) => setError(String(e)));
  };

  const confirmUndo = (report: UndoReport) => {
    setUndoing(null);
    act(undoRun(report.run_id).then(setUndone));
  };

  return (
    <section className="screen">
      <h1>Runs</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <h2>Now</h2>
      {runs && runs.jobs.length === 0 && <p className="muted">No job is running.</p>}
      {runs && runs.jobs.length > 0 && (
        <table className="grid" data-testid="jobs">
          <tbody>
            {runs.jobs.map((job) => (
              <tr key={job.pipeline} data-testid={`job-${job.pipeline}`}>
                <td>{job.pipeline}</td>
                <td className={`status ${job.status}`}>{job.status}</td>
                <td className="muted">{job.started_by}</td>
                <td>
                  <button type="button" className="secondary" onClick={() => act(pauseRun(job.pipeline))}>
                    Pause
                  </button>{" "}
                  <button type="button" className="secondary" onClick={() => act(cancelRun(job.pipeline))}>
                    Cancel
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {undoing && (
        <div className="confirm" role="dialog" aria-label="Undo the run" data-testid="undo-confirm">
          <p>
            <strong>
              Undo run {undoing.run_id} of {undoing.pipeline}?
            </strong>{" "}
            Every table it changed goes back to what it was before it, in one transaction:
          </p>
          <ul>
            {undoText(undoing).map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
          <p className="muted">
            Edits made in these rows since the run are replaced too. Schema changes the run applied stay.
          </p>
          <button type="button" className="danger" data-testid="undo-confirm-button" onClick={() => confirmUndo(undoing)}>
            Undo run
          </button>{" "}
          <button type="button" className="secondary" onClick={() => setUndoing(null)}>
            Keep it
          </button>
        </div>
      )}
      {undone && (
        <p className="notice" data-testid="undo-done">
          Run {undone.run_id} undone. {undoText(undone).join(" ")}
        </p>
      )}
      <h2>History</h2>
      <div className="table-scroll">
        <table className="grid" data-testid="run-history">
          <thead>
            <tr>
              <th>Pipeline</th>
              <th>Status</th>
              <th />
              <th>Started</th>
              <th>By</th>
              <th className="num">Duration</th>
              <th className="num">Fetched</th>
              <th className="num">Inserted</th>
              <th className="num">Updated</th>
              <th className="num">Skipped</th>
              <th className="num">Failed</th>
              <th className="num">Pending</th>
              <th className="num">Conflicts</th>
              <th title="Time each stage spent, summed over the run's batches (the stages overlap)">Fetch · transform · ingest</th>
            </tr>
          </thead>
          <tbody>
            {runs?.history.map((row, index) => {
              const latest = runs.history.findIndex((r) => r.pipeline === row.pipeline) === index;
              const active = runs.jobs.some((j) => j.pipeline === row.pipeline);
              const undoable =
                runs.history.findIndex((r) => r.pipeline === row.pipeline && r.run.undone_at === null && changedTarget(r)) ===
                index;
              return (
                <tr key={row.run.id} data-testid={`history-${row.run.id}`} title={row.run.error ?? ""}>
                  <td>{row.pipeline}</td>
                  <td
                    className={`status ${row.run.status === "completed" && row.outcome !== "completed" ? "with-failed" : row.run.status}`}
                    data-testid={`outcome-${row.run.id}`}
                  >
                    {row.outcome}
                    {row.run.undone_at && (
                      <span className="muted" data-testid={`undone-${row.run.id}`} title={`Undone at ${row.run.undone_at}`}>
                        {" "}
                        · undone
                      </span>
                    )}
                  </td>
                  <td className="row-actions">
                    {latest && !active && RESUMABLE.has(row.run.status) && (
                      <button type="button" onClick={() => act(runPipeline(row.pipeline, () => undefined))}>
                        Resume
                      </button>
                    )}
                    {latest && !active && row.run.status === "failed" && row.run.held_deletes > 0 && (
                      <button
                        type="button"
                        className="danger"
                        data-testid={`confirm-deletes-${row.run.id}`}
                        title="The delete guard held these deletes; nothing was deleted. Confirm only if the source really lost the records."
                        onClick={() => act(runPipeline(row.pipeline, () => undefined, true))}
                      >
                        Confirm deletes ({row.run.held_deletes.toLocaleString("en-US")} rows)
                      </button>
                    )}
                    <button
                      type="button"
                      className="secondary"
                      data-testid={`log-${row.run.id}`}
                      title="What happened in this run, line by line: pages, failed records, lost connections, its end"
                      onClick={() => openLog(row.run.id)}
                    >
                      Log
                    </button>{" "}
                    {undoable && !active && (
                      <button
                        type="button"
                        className="secondary undo"
                        data-testid={`undo-${row.run.id}`}
                        title="Put every table this run changed back as it was before it"
                        onClick={() => askUndo(row.run.id)}
                      >
                        Undo…
                      </button>
                    )}
                  </td>
                  <td>{new Date(row.run.started_at).toLocaleString()}</td>
                  <td className="muted">{row.started_by}</td>
                  <td className="num">{(row.run.duration_ms / 1000).toFixed(1)} s</td>
                  <td className="num">{row.counts.fetched.toLocaleString("en-US")}</td>
                  <td className="num">{row.counts.inserted.toLocaleString("en-US")}</td>
                  <td className="num">{row.counts.updated.toLocaleString("en-US")}</td>
                  <td className="num">{row.counts.skipped.toLocaleString("en-US")}</td>
                  <td className="num">{row.counts.failed.toLocaleString("en-US")}</td>
                  <td className="num">{row.counts.pending.toLocaleString("en-US")}</td>
                  <td className="num">{row.counts.conflicts.toLocaleString("en-US")}</td>
                  <td data-testid={`stages-${row.run.id}`}>
                    <StageBar stages={row.stages} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {log && <RunLogPanel {...log} onClose={() => setLog(null)} />}
      <ScheduleEditor key={pipeline} pipeline={pipeline} />
      <AlertSettings />
    </section>
  );
}

/** A run's log: every line, or only its warnings and errors (failed records, lost connections, the failure). */
function RunLogPanel({
  runId,
  lines,
  error,
  onClose,
}: {
  runId: string;
  lines: LogLine[] | null;
  error: string | null;
  onClose: () => void;
}) {
  const [problemsOnly, setProblemsOnly] = useState(false);
  const shown = (lines ?? []).filter((l) => !problemsOnly || l.level !== "info");
  return (
    <section className="run-log" data-testid="run-log" aria-label={`Log of run ${runId}`}>
      <div className="toolbar">
        <h2>Log of run {runId}</h2>
        <label>
          <input
            type="checkbox"
            data-testid="log-problems-only"
            checked={problemsOnly}
            onChange={(e) => setProblemsOnly(e.target.checked)}
          />{" "}
          warnings and errors only
        </label>
        <button type="button" className="secondary" data-testid="log-close" onClick={onClose}>
          Close
        </button>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {lines === null && !error && <p className="muted">Reading the log…</p>}
      {lines?.length === 0 && <p className="muted">This run left no log (a dry run, or its log was pruned).</p>}
      <table className="grid log-lines">
        <tbody>
          {shown.map((line, i) => (
            <tr key={i} className={`log-${line.level}`} data-testid="log-line">
              <td className="muted">{new Date(line.ts).toLocaleTimeString()}</td>
              <td>{line.level}</td>
              <td>{line.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

const WEBHOOK_SOURCE: Record<WebhookSource, string> = {
  environment: "from the environment variable SYNCFLOW_ALERT_WEBHOOK (it wins over one saved here)",
  keychain: "saved in the OS keychain",
  none: "none: alerts are desktop notifications only",
};

/** Where alerts about scheduled runs go besides desktop notifications: a Slack-compatible webhook. */
function AlertSettings() {
  const [source, setSource] = useState<WebhookSource | null>(null);
  const [url, setUrl] = useState("");
  const [note, setNote] = useState<{ text: string; failed: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => {
    alertWebhook()
      .then(setSource)
      .catch((e: unknown) => setNote({ text: String(e), failed: true }));
  }, []);
  useEffect(load, [load]);
  const act = (action: Promise<unknown>, done: string) => {
    setBusy(true);
    setNote(null);
    action
      .then(() => setNote({ text: done, failed: false }))
      .catch((e: unknown) => setNote({ text: String(e), failed: true }))
      .finally(() => {
        setBusy(false);
        load();
      });
  };
  return (
    <section className="alerts" data-testid="alert-settings">
      <h2>Alerts</h2>
      <p className="muted">
        A scheduled run that fails or pauses at the end of its window raises a desktop notification and, when a
        webhook is set, a message to it (Slack&apos;s incoming-webhook JSON; also from <code>syncflow daemon</code>).
      </p>
      <p data-testid="alert-webhook-source">Webhook: {source ? WEBHOOK_SOURCE[source] : "…"}</p>
      <div className="toolbar">
        <input
          type="password"
          autoComplete="off"
          data-testid="alert-webhook-url"
          placeholder="https://hooks.slack.com/services/… (kept in the keychain, never shown again)"
          value={url}
          onChange={(e) => setUrl(e.target.value)}
          className="wide"
        />
        <button
          type="button"
          data-testid="save-alert-webhook"
          disabled={busy || !url.trim()}
          title={!url.trim() ? "Paste the webhook's URL first" : undefined}
          onClick={() => {
            const typed = url;
            setUrl("");
            act(saveAlertWebhook(typed), "Webhook saved in the keychain.");
          }}
        >
          Save webhook
        </button>
        <button
          type="button"
          className="secondary"
          data-testid="test-alert"
          disabled={busy || source === "none"}
          title={source === "none" ? "Set a webhook first" : "Send a test message to the webhook"}
          onClick={() => act(testAlert(), "Test alert sent: the webhook accepted it.")}
        >
          Send a test alert
        </button>
      </div>
      {note && (
        <p className={note.failed ? "error" : "notice"} role="status" data-testid="alert-note">
          {note.text}
        </p>
      )}
    </section>
  );
}

const STAGES = [
  ["fetch", "fetch_ms"],
  ["transform", "transform_ms"],
  ["ingest", "ingest_ms"],
] as const;

/** The stage sums in words: "fetch 1.2 s · transform 0.4 s · ingest 2.0 s (12 batches)". */
export function stagesText(stages: StageTimes): string {
  if (stages.batches === 0) return "no batches";
  const parts = STAGES.map(([name, key]) => `${name} ${(stages[key] / 1000).toFixed(1)} s`);
  return `${parts.join(" · ")} (${stages.batches.toLocaleString("en-US")} batches)`;
}

/** Where a run's time went: one bar per stage, as long as its share of the largest, with the sums in words. */
function StageBar({ stages }: { stages: StageTimes }) {
  const longest = Math.max(stages.fetch_ms, stages.transform_ms, stages.ingest_ms, 1);
  return (
    <span className="stages" title="Summed over the run's batches; the stages overlap, so the longest paced the run">
      {stages.batches > 0 &&
        STAGES.map(([name, key]) => (
          <span key={name} className={`stage ${name}`} style={{ width: `${(40 * stages[key]) / longest}px` }} />
        ))}
      <span className="muted">{stagesText(stages)}</span>
    </span>
  );
}

interface Draft {
  enabled: boolean;
  cron: string;
  timezone: string;
  windowed: boolean;
  start: string;
  end: string;
  days: string;
}

const EMPTY: Draft = {
  enabled: false,
  cron: "0 19 * * *",
  timezone: "UTC",
  windowed: true,
  start: "19:00",
  end: "07:00",
  days: "",
};

function draftOf(schedule: Schedule | null): Draft {
  if (!schedule) return EMPTY;
  return {
    enabled: true,
    cron: schedule.cron,
    timezone: schedule.timezone,
    windowed: schedule.window !== undefined,
    start: schedule.window?.start ?? EMPTY.start,
    end: schedule.window?.end ?? EMPTY.end,
    days: schedule.days_to_complete ? String(schedule.days_to_complete) : "",
  };
}

/** The draft as the pipeline file's `[schedule]` (the engine checks it). */
export function scheduleOf(draft: Draft): Schedule | null {
  if (!draft.enabled) return null;
  const days = Number.parseInt(draft.days, 10);
  return {
    cron: draft.cron,
    timezone: draft.timezone,
    ...(draft.windowed ? { window: { start: draft.start, end: draft.end } } : {}),
    ...(Number.isFinite(days) && days > 0 ? { days_to_complete: days } : {}),
  };
}

/** Cron with a preview in words and the next five runs, a time window, days to complete. */
function ScheduleEditor({ pipeline }: Props) {
  const [view, setView] = useState<ScheduleView | null>(null);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [preview, setPreview] = useState<SchedulePreview | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  // The draft as last loaded or saved: a different draft is unsaved.
  const [stored, setStored] = useState<Draft>(EMPTY);
  useUnsavedGuard(JSON.stringify(draft) !== JSON.stringify(stored), `The schedule of ${pipeline}`);

  useEffect(() => {
    pipelineSchedule(pipeline)
      .then((v) => {
        setView(v);
        setDraft(draftOf(v.schedule));
        setStored(draftOf(v.schedule));
      })
      .catch((e: unknown) => setProblem(String(e)));
  }, [pipeline]);

  useEffect(() => {
    const schedule = scheduleOf({ ...draft, enabled: true });
    if (!schedule) return;
    let current = true;
    schedulePreview(schedule)
      .then((p) => {
        if (!current) return;
        setPreview(p);
        setProblem(null);
      })
      .catch((e: unknown) => {
        if (!current) return;
        setPreview(null);
        setProblem(String(e));
      });
    return () => {
      current = false;
    };
  }, [draft]);

  const set = (patch: Partial<Draft>) => {
    setSaved(null);
    setDraft((d) => ({ ...d, ...patch }));
  };

  return (
    <section className="schedule" data-testid="schedule-editor">
      <h2>Schedule of {pipeline}</h2>
      <label>
        <input type="checkbox" checked={draft.enabled} data-testid="schedule-enabled" onChange={(e) => set({ enabled: e.target.checked })} />{" "}
        Run on a schedule
      </label>
      <div className="form-row">
        <label>
          Cron{" "}
          <input data-testid="schedule-cron" value={draft.cron} onChange={(e) => set({ cron: e.target.value })} />
        </label>
        <label>
          Time zone{" "}
          <input data-testid="schedule-timezone" value={draft.timezone} onChange={(e) => set({ timezone: e.target.value })} />
        </label>
      </div>
      <div className="form-row">
        <label>
          <input type="checkbox" checked={draft.windowed} onChange={(e) => set({ windowed: e.target.checked })} /> Only between
        </label>{" "}
        <input aria-label="window start" data-testid="schedule-start" value={draft.start} disabled={!draft.windowed} onChange={(e) => set({ start: e.target.value })} />{" "}
        and{" "}
        <input aria-label="window end" data-testid="schedule-end" value={draft.end} disabled={!draft.windowed} onChange={(e) => set({ end: e.target.value })} />
        <label>
          {" "}
          Days to complete{" "}
          <input data-testid="schedule-days" value={draft.days} placeholder="1" onChange={(e) => set({ days: e.target.value })} />
        </label>
      </div>
      {problem && (
        <p role="alert" className="error" data-testid="schedule-problem">
          {problem}
        </p>
      )}
      {preview && draft.enabled && (
        <div className="muted" data-testid="schedule-preview">
          <p>{preview.description}</p>
          {preview.window && <p>{preview.window}</p>}
          <p>Next runs (your local time):</p>
          <ol>
            {preview.next_runs.map((t) => (
              <li key={t} title={t}>
                {when(t)}
              </li>
            ))}
          </ol>
        </div>
      )}
      {view && view.state.missed > 0 && (
        <p className="notice" data-testid="schedule-missed">
          {view.state.missed} scheduled run(s) were missed since {view.state.missed_since ?? "?"} while the console was
          closed; they were run once.
        </p>
      )}
      <button
        type="button"
        data-testid="schedule-save"
        disabled={draft.enabled && problem !== null}
        title={draft.enabled && problem !== null ? `Fix the schedule first: ${problem}` : undefined}
        onClick={() => {
          saveSchedule(pipeline, scheduleOf(draft))
            .then(() => {
              setStored(draft);
              setSaved(draft.enabled ? "Schedule saved." : "Schedule removed.");
            })
            .catch((e: unknown) => setProblem(String(e)));
        }}
      >
        Save schedule
      </button>{" "}
      {saved && <span data-testid="schedule-saved">{saved}</span>}
    </section>
  );
}
