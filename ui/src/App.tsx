import { listen } from "@tauri-apps/api/event";
import { useCallback, useEffect, useRef, useState } from "react";
import { attention as loadAttention, listPipelines } from "./api";
import type { Attention, PipelineSummary, SchedulerAction } from "./bindings";
import { ConflictsScreen } from "./ConflictsScreen";
import { ConnectScreen } from "./ConnectScreen";
import { FailedScreen } from "./FailedScreen";
import { MappingScreen } from "./MappingScreen";
import { PipelinesScreen } from "./PipelinesScreen";
import { RunsScreen } from "./RunsScreen";
import { SchemaScreen } from "./SchemaScreen";
import { UnsavedContext } from "./unsaved";

type Tab = "pipelines" | "runs" | "connect" | "mapping" | "schema" | "failed" | "conflicts";

const TABS: { id: Tab; label: string }[] = [
  { id: "pipelines", label: "Pipelines" },
  { id: "runs", label: "Runs & schedule" },
  { id: "connect", label: "New pipeline" },
  { id: "mapping", label: "Mapping" },
  { id: "schema", label: "Schema" },
  { id: "failed", label: "Failed records" },
  { id: "conflicts", label: "Conflicts" },
];

/** The count a tab's badge shows for the selected pipeline (what needs a person there). */
function badgeOf(tab: Tab, needs: Attention | null): number {
  if (!needs) return 0;
  if (tab === "failed") return needs.failed;
  if (tab === "conflicts") return needs.conflicts;
  return 0;
}

/** What a tab's badge counts, in words (its tooltip). */
function badgeTitle(tab: Tab, needs: Attention | null): string {
  if (!needs) return "";
  const of = needs.pipeline ?? "all pipelines";
  if (tab === "failed") {
    return `${needs.failed} record(s) of ${of} in Failed records; ${needs.dead} of them past their last automatic try`;
  }
  return `${needs.conflicts} open conflict(s) of ${of}`;
}

/** A scheduler action worth a line at the top of the window: what happened, whether it went wrong, and the screen
 * that shows more. */
interface News {
  text: string;
  warn: boolean;
  pipeline: string;
  tab: Tab | null;
  link: string;
}

function describeAction(action: SchedulerAction): News | null {
  const news = (text: string, warn: boolean, tab: Tab | null, link = "") => ({ text, warn, tab, link, pipeline: action.pipeline });
  switch (action.action) {
    case "started":
      return action.missed > 0
        ? news(`${action.pipeline}: ${action.missed} missed scheduled run(s) folded into one, started now.`, false, null)
        : null;
    case "paused":
      return news(`${action.pipeline} paused: ${action.reason}.`, true, "runs", "See Runs & schedule");
    case "retried":
      return action.dead > 0
        ? news(`${action.pipeline}: ${action.dead} failed record(s) used their last automatic try.`, true, "failed", "See Failed records")
        : null;
    case "children_checked":
      return action.dead > 0
        ? news(`${action.pipeline}: ${action.dead} record(s) waited ${action.checks} checks for a parent that never came.`, true, "failed", "See Failed records")
        : null;
    case "ended":
      if (action.status === "failed") {
        return news(
          `${action.pipeline}: the scheduled run failed — ${action.error ?? "no reason given"}.`,
          true,
          "runs",
          "See its log in Runs & schedule",
        );
      }
      return action.failed > 0
        ? news(`${action.pipeline}: the scheduled run completed with ${action.failed} failed.`, true, "failed", "See Failed records")
        : null;
  }
}

export function App() {
  const [pipelines, setPipelines] = useState<PipelineSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("pipelines");
  const [selected, setSelected] = useState<string | null>(null);
  const [needs, setNeeds] = useState<Attention | null>(null);
  // The badges count the selected pipeline; the poll reads the selection through a ref so it keeps one timer.
  const selectedRef = useRef<string | null>(null);
  const [news, setNews] = useState<News | null>(null);
  // The pipeline the form was opened on (Edit or Clone on Pipelines), or null for a new one.
  const [editing, setEditing] = useState<{ name: string; mode: "edit" | "clone" } | null>(null);
  // What holds unsaved changes (reported by the screen), and the switch waiting for "leave without saving".
  const [unsaved, setUnsaved] = useState<string | null>(null);
  const [leaving, setLeaving] = useState<{ go: () => void } | null>(null);
  const guarded = (go: () => void) => (unsaved ? setLeaving({ go }) : go());

  useEffect(() => {
    selectedRef.current = selected;
    loadAttention(selected)
      .then(setNeeds)
      .catch(() => undefined);
  }, [selected]);

  const refresh = useCallback(() => {
    listPipelines()
      .then((list) => {
        setPipelines(list);
        setSelected((current) => current ?? list[0]?.name ?? null);
        setError(null);
      })
      .catch((e: unknown) => setError(String(e)));
  }, []);

  useEffect(refresh, [refresh]);

  // Badges: dead records and open conflicts, kept current; the scheduler's news as it happens.
  useEffect(() => {
    const poll = () => {
      loadAttention(selectedRef.current)
        .then(setNeeds)
        .catch(() => undefined);
    };
    poll();
    const timer = window.setInterval(poll, 3000);
    const unlisten = listen<SchedulerAction>("scheduler", (event) => {
      const line = describeAction(event.payload);
      if (line) setNews(line);
      poll();
    }).catch(() => null);
    return () => {
      window.clearInterval(timer);
      void unlisten.then((stop) => stop?.()).catch(() => undefined);
    };
  }, []);

  return (
    <UnsavedContext.Provider value={setUnsaved}>
    <div className="app">
      <header className="topbar">
        <span className="logo">SyncFlow Console</span>
        <nav>
          {TABS.map((t) => (
            <button
              key={t.id}
              type="button"
              className={`tab ${tab === t.id ? "active" : ""}`}
              data-testid={`tab-${t.id}`}
              onClick={() =>
                guarded(() => {
                  setTab(t.id);
                  if (t.id === "connect") setEditing(null);
                  refresh();
                })
              }
            >
              {t.label}
              {badgeOf(t.id, needs) > 0 && (
                <span className="tab-count" data-testid={`badge-${t.id}`} title={badgeTitle(t.id, needs)}>
                  {badgeOf(t.id, needs).toLocaleString("en-US")}
                </span>
              )}
            </button>
          ))}
        </nav>
        {tab !== "pipelines" && tab !== "connect" && pipelines && (
          <label className="picker">
            Pipeline{" "}
            <select
              data-testid="pipeline-picker"
              value={selected ?? ""}
              onChange={(e) => {
                const chosen = e.target.value;
                guarded(() => setSelected(chosen));
              }}
            >
              {pipelines.map((p) => (
                <option key={p.name} value={p.name}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
        )}
      </header>
      <main>
        {leaving && unsaved && (
          <div className="confirm" role="dialog" aria-label="Unsaved changes" data-testid="unsaved-confirm">
            <p>{unsaved} has changes you have not saved. Leave without saving them?</p>
            <button type="button" className="secondary" data-testid="unsaved-stay" onClick={() => setLeaving(null)}>
              Stay and save
            </button>{" "}
            <button
              type="button"
              className="danger"
              data-testid="unsaved-leave"
              onClick={() => {
                setUnsaved(null);
                setLeaving(null);
                leaving.go();
              }}
            >
              Leave without saving
            </button>
          </div>
        )}
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        {news && (
          <p className={news.warn ? "warning" : "notice"} data-testid="scheduler-news">
            {news.text}{" "}
            {news.tab && (
              <button
                type="button"
                className="link"
                data-testid="scheduler-news-open"
                onClick={() => {
                  const tab = news.tab;
                  if (!tab) return;
                  guarded(() => {
                    setSelected(news.pipeline);
                    setTab(tab);
                    setNews(null);
                  });
                }}
              >
                {news.link}
              </button>
            )}
            <button type="button" className="close" aria-label="Dismiss" data-testid="scheduler-news-close" onClick={() => setNews(null)}>
              ×
            </button>
          </p>
        )}
        {pipelines === null && !error && <p className="muted">Loading pipelines…</p>}
        {pipelines && tab === "pipelines" && (
          <PipelinesScreen
            pipelines={pipelines}
            onRunFinished={refresh}
            onReview={(name) => {
              setSelected(name);
              setTab("schema");
            }}
            onOpenFailed={(name) => {
              setSelected(name);
              setTab("failed");
            }}
            onEdit={(name, mode) => {
              setEditing({ name, mode });
              setTab("connect");
            }}
          />
        )}
        {tab === "connect" && (
          <ConnectScreen
            key={editing ? `${editing.mode}-${editing.name}` : "new"}
            from={editing}
            onCreated={(name) => {
              setSelected(name);
              refresh();
            }}
          />
        )}
        {tab === "mapping" && selected && <MappingScreen key={selected} pipeline={selected} />}
        {tab === "schema" && selected && <SchemaScreen key={selected} pipeline={selected} />}
        {tab === "failed" && selected && (
          <FailedScreen key={selected} pipeline={selected} stamp={needs ? `${needs.failed}/${needs.dead}` : undefined} />
        )}
        {tab === "runs" && selected && <RunsScreen key={selected} pipeline={selected} />}
        {tab === "conflicts" && selected && <ConflictsScreen key={selected} pipeline={selected} />}
      </main>
    </div>
    </UnsavedContext.Provider>
  );
}
