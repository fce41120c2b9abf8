import { useCallback, useEffect, useState } from "react";
import { listPipelines } from "./api";
import type { PipelineSummary } from "./bindings";
import { ConnectScreen } from "./ConnectScreen";
import { FailedScreen } from "./FailedScreen";
import { MappingScreen } from "./MappingScreen";
import { PipelinesScreen } from "./PipelinesScreen";
import { SchemaScreen } from "./SchemaScreen";

type Tab = "pipelines" | "connect" | "mapping" | "schema" | "failed";

const TABS: { id: Tab; label: string }[] = [
  { id: "pipelines", label: "Pipelines" },
  { id: "connect", label: "New pipeline" },
  { id: "mapping", label: "Mapping" },
  { id: "schema", label: "Schema" },
  { id: "failed", label: "Failed records" },
];

export function App() {
  const [pipelines, setPipelines] = useState<PipelineSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("pipelines");
  const [selected, setSelected] = useState<string | null>(null);

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

  return (
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
              onClick={() => setTab(t.id)}
            >
              {t.label}
            </button>
          ))}
        </nav>
        {tab !== "pipelines" && tab !== "connect" && pipelines && (
          <label className="picker">
            Pipeline{" "}
            <select
              data-testid="pipeline-picker"
              value={selected ?? ""}
              onChange={(e) => setSelected(e.target.value)}
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
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        {pipelines === null && !error && <p className="muted">Loading pipelines…</p>}
        {pipelines && tab === "pipelines" && <PipelinesScreen pipelines={pipelines} onRunFinished={refresh} />}
        {tab === "connect" && (
          <ConnectScreen
            onCreated={(name) => {
              setSelected(name);
              refresh();
            }}
          />
        )}
        {tab === "mapping" && selected && <MappingScreen key={selected} pipeline={selected} />}
        {tab === "schema" && selected && <SchemaScreen key={selected} pipeline={selected} />}
        {tab === "failed" && selected && <FailedScreen key={selected} pipeline={selected} />}
      </main>
    </div>
  );
}
