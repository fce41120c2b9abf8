import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { App } from "./App";
import { applyEvent, etaSeconds, stageRates, writeCallsText, type LiveRun } from "./PipelinesScreen";
import type { RunSummary } from "./bindings";

const summary: RunSummary = {
  run_id: "0192-run",
  pipeline: "Demo",
  status: "completed",
  entities: {
    products: { fetched: 2500, inserted: 2500, updated: 0, deleted: 0, skipped: 0, failed: 0, pending: 0, conflicts: 0 },
  },
  duration_ms: 1234,
  error: null,
  outcome: "completed",
};

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("pipelines screen", () => {
  it("shows each pipeline's health: last run, next run, and what waits for a person", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_pipelines") {
        return [
          {
            name: "erp",
            source_kind: "rest",
            target_kind: "postgres",
            last_run: { id: "r1", status: "failed", started_at: "2026-12-03T10:00:00Z", finished_at: null, duration_ms: 5, error: "x", held_deletes: 0, undone_at: null },
            disabled: false,
            failed_records: 1200,
            waiting_children: 3,
            open_conflicts: 2,
            next_run: "2026-12-04T19:00:00Z",
          },
          { name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null },
        ];
      }
      if (cmd === "busy_pipelines" || cmd === "attention") return cmd === "attention" ? { pipeline: null, failed: 0, dead: 0, conflicts: 0 } : [];
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    expect((await screen.findByTestId("health-erp")).textContent).toBe("1,200 failed record(s) · 3 waiting for a parent · 2 open conflict(s)");
    expect(screen.getByTestId("health-Demo").textContent).toBe("all clear");
    expect(screen.getByTestId("last-run-erp").textContent).toContain("failed");
    expect(screen.getByTestId("next-run-erp").textContent).toMatch(/2026/);
    expect(screen.getByTestId("next-run-Demo").textContent).toBe("—");
    expect(screen.getByTestId("last-run-Demo").textContent).toBe("never");
  });

  it("lists pipelines and shows the counts of a finished run", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "run_pipeline") return summary;
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    const run = await screen.findByTestId("run-Demo");
    fireEvent.click(run);
    await waitFor(() => expect(screen.getByTestId("run-status").textContent).toBe("completed"));
    expect(screen.getByTestId("count-products-inserted").textContent).toBe("2,500");
    expect(screen.getByTestId("count-products-failed").textContent).toBe("0");
    expect(calls).toContain("run_pipeline");
  });

  it("counts the selected pipeline's failed records in the tab's badge and says what it counts", async () => {
    const asked: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 3, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "attention") {
        const pipeline = (args as { pipeline: string | null }).pipeline;
        asked.push(pipeline);
        return pipeline === "Demo" ? { pipeline, failed: 3, dead: 1, conflicts: 0 } : { pipeline, failed: 0, dead: 0, conflicts: 0 };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    const badge = await screen.findByTestId("badge-failed");
    expect(badge.textContent).toBe("3");
    expect(badge.getAttribute("title")).toBe("3 record(s) of Demo in Failed records; 1 of them past their last automatic try");
    expect(asked).toContain("Demo");
    expect(screen.queryByTestId("badge-conflicts")).toBeNull();
  });

  it("says a completed run left failed records, in amber, and leads to them", async () => {
    let opened = "";
    mockIPC((cmd) => {
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "run_pipeline") {
        const products = { fetched: 2500, inserted: 2497, updated: 0, deleted: 0, skipped: 0, failed: 3, pending: 0, conflicts: 0 };
        return { ...summary, entities: { products }, outcome: "completed with 3 failed" };
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "attention") return { pipeline: null, failed: 0, dead: 0, conflicts: 0 };
      if (cmd === "failed_queue" || cmd === "pending_children") {
        opened = "failed";
        return cmd === "failed_queue" ? { records: [], groups: [] } : [];
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("run-Demo"));
    await waitFor(() => expect(screen.getByTestId("run-status").textContent).toBe("completed with 3 failed"));
    expect(screen.getByTestId("run-status").className).toContain("with-failed");
    fireEvent.click(screen.getByTestId("open-failed"));
    await waitFor(() => expect(opened).toBe("failed"));
  });

  it("offers the schema review when a run stops for a schema change nobody applied", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "run_pipeline") {
        throw { kind: "needs_review", message: 'entity "products": schema review needed: target table products does not exist yet' };
      }
      if (cmd === "schema_review") return { prisma: "model Products {}", errors: [], tables: [] };
      if (cmd === "attention") return { pipeline: null, failed: 0, dead: 0, conflicts: 0 };
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("run-Demo"));
    await waitFor(() => expect(screen.getByTestId("run-error").textContent).toContain("schema review needed"));
    fireEvent.click(screen.getByTestId("review-schema"));
    await waitFor(() => expect(calls).toContain("schema_review"));
    expect(screen.getByTestId("tab-schema").className).toContain("active");
  });

  it("previews a pipeline: counts per entity and sample rows with their action", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "attention") return { pipeline: null, failed: 0, dead: 0, conflicts: 0 };
      if (cmd === "preview_pipeline") {
        return {
          summary: { ...summary, entities: { products: { ...summary.entities.products, inserted: 7, skipped: 2493 } } },
          entities: [
            { entity: "products", table: "products", columns: ["id", "name"], rows: [{ action: "insert", values: [1, "Widget"] }] },
          ],
        };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("preview-Demo"));
    await waitFor(() => expect(screen.getByTestId("preview-products-inserted").textContent).toBe("7"));
    expect(screen.getByTestId("preview-products-skipped").textContent).toBe("2,493");
    expect(screen.getByTestId("preview-sample-products").textContent).toContain("Widget");
    expect(screen.getByTestId("preview-sample-products").textContent).toContain("insert");
  });

  it("disables, enables and deletes a pipeline, saying the target is not touched", async () => {
    const calls: { cmd: string; args: unknown }[] = [];
    let disabled = false;
    let present = true;
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_pipelines") {
        return present ? [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }] : [];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "attention") return { pipeline: null, failed: 0, dead: 0, conflicts: 0 };
      if (cmd === "set_pipeline_enabled") {
        disabled = !(args as { enabled: boolean }).enabled;
        return null;
      }
      if (cmd === "delete_pipeline") {
        present = false;
        return null;
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("toggle-Demo"));
    await waitFor(() => expect(screen.getByTestId("disabled-Demo")).toBeTruthy());
    expect((screen.getByTestId("run-Demo") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("run-Demo").title).toContain("enable it");
    fireEvent.click(screen.getByTestId("toggle-Demo"));
    await waitFor(() => expect(screen.queryByTestId("disabled-Demo")).toBeNull());
    fireEvent.click(screen.getByTestId("delete-Demo"));
    expect(screen.getByTestId("confirm-delete").textContent).toContain("The target is not touched");
    fireEvent.click(screen.getByTestId("confirm-delete-yes"));
    await waitFor(() => expect(screen.getByTestId("lifecycle-note").textContent).toContain("left as they are"));
    expect(calls.some((c) => c.cmd === "delete_pipeline")).toBe(true);
    await waitFor(() => expect(screen.queryByTestId("pipeline-Demo")).toBeNull());
  });

  it("names who holds a pipeline that another run holds, on its Run button", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "busy_pipelines") {
        return [
          {
            pipeline: "Demo",
            holder: { started_by: "cli", pid: 4242, host: "box", since: "2026-12-03T09:00:00Z" },
            description: "syncflow run (process 4242 on box) since 2026-12-03T09:00:00Z",
          },
        ];
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    const busy = await screen.findByTestId("busy-Demo");
    expect(busy.textContent).toBe("Running in syncflow run (process 4242 on box) since 2026-12-03T09:00:00Z");
    const run = screen.getByTestId("run-Demo") as HTMLButtonElement;
    expect(run.disabled).toBe(true);
    expect(run.title).toContain("process 4242 on box");
  });

  it("confirms the deletes the delete guard held in the last run", async () => {
    const runs: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "list_pipelines") {
        const last_run = {
          id: "r1",
          status: "failed",
          started_at: "2026-12-03T09:00:00Z",
          finished_at: "2026-12-03T09:00:05Z",
          duration_ms: 5000,
          error: "entity \"items\": the pass would delete 3000 of the 5000 rows of items (60 %)",
          held_deletes: 3000,
        };
        return [{ name: "Demo", source_kind: "rest", target_kind: "postgres", last_run }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "run_pipeline") {
        runs.push(args);
        return summary;
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    const confirm = await screen.findByTestId("confirm-deletes-Demo");
    expect(confirm.textContent).toBe("Confirm deletes (3,000 rows)");
    fireEvent.click(confirm);
    await waitFor(() => expect(runs).toHaveLength(1));
    expect(runs[0]).toMatchObject({ name: "Demo", confirmDeletes: true });
  });

  it("offers to confirm held deletes right under the run that held them", async () => {
    const runs: unknown[] = [];
    const failed: RunSummary = {
      ...summary,
      status: "failed",
      error: "entity \"items\": the pass would delete 3000 of the 5000 rows of items (60 %)",
    };
    mockIPC((cmd, args) => {
      if (cmd === "list_pipelines") {
        const last_run =
          runs.length === 0
            ? null
            : {
                id: "r1",
                status: "failed",
                started_at: "2026-12-03T09:00:00Z",
                finished_at: "2026-12-03T09:00:05Z",
                duration_ms: 5000,
                error: failed.error,
                held_deletes: 3000,
              };
        return [{ name: "Demo", source_kind: "rest", target_kind: "postgres", last_run }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "run_pipeline") {
        runs.push(args);
        return runs.length === 1 ? failed : summary;
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("run-Demo"));
    await waitFor(() => expect(screen.getByTestId("run-status").textContent).toBe("failed"));
    expect(screen.getByTestId("run-error").textContent).toContain("would delete 3000 of the 5000 rows");
    const confirm = await screen.findByTestId("confirm-deletes-run");
    expect(confirm.textContent).toBe("Confirm deletes (3,000 rows)");
    fireEvent.click(confirm);
    await waitFor(() => expect(runs).toHaveLength(2));
    expect(runs[0]).toMatchObject({ confirmDeletes: false });
    expect(runs[1]).toMatchObject({ name: "Demo", confirmDeletes: true });
  });

  it("tells a busy pipeline from a failed run: the engine's typed error puts Busy on the Run button", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "run_pipeline") {
        throw { kind: "busy", message: 'pipeline "Demo" is being run by syncflow run (process 77 on box)' };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    fireEvent.click(await screen.findByTestId("run-Demo"));
    const note = await screen.findByTestId("busy-Demo");
    expect(note.textContent).toContain("process 77 on box");
    const run = screen.getByTestId("run-Demo") as HTMLButtonElement;
    expect(run.textContent).toBe("Busy");
    expect(run.title).toContain("process 77 on box");
    expect(screen.queryByTestId("run-status")).toBeNull();
  });

  it("shows a failing command's typed message, not an object", async () => {
    mockIPC(() => {
      throw { kind: "failed", message: "state database locked" };
    });
    render(<App />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("state database locked");
    expect(alert.textContent).not.toContain("[object Object]");
  });

  it("shows a failing command's message where the user looks", async () => {
    mockIPC(() => {
      throw new Error("state database locked");
    });
    render(<App />);
    expect((await screen.findByRole("alert")).textContent).toContain("state database locked");
  });
});

describe("applyEvent", () => {
  const base: LiveRun = {
    pipeline: "Demo",
    status: "running",
    entities: {},
    rowsPerS: 0,
    pageNo: 0,
    current: null,
    expected: {},
    startedAt: Date.now() - 2000,
    rate: [],
    pausing: false,
    waiting: null,
    summary: null,
    error: null,
    review: false,
    stages: {},
  };
  const counts = { fetched: 250, inserted: 250, updated: 0, deleted: 0, skipped: 0, failed: 0, pending: 0, conflicts: 0 };
  const stages = { batches: 1, fetch_ms: 100, transform_ms: 10, ingest_ms: 50 };

  it("keeps the latest counts per entity from page events", () => {
    const next = applyEvent(base, { event: "page", entity: "products", page_no: 1, counts, rows_per_s: 900, expected: null, records: 250, stages, stage_records: 250, target_calls: null });
    expect(next.entities["products"]?.fetched).toBe(250);
    expect(next.pageNo).toBe(1);
    expect(next.rate).toHaveLength(1);
    expect(etaSeconds(next, "products")).toBeNull();
  });

  it("counts a REST target's write calls and says their rate", () => {
    const run = applyEvent(base, { event: "page", entity: "products", page_no: 3, counts, rows_per_s: 900, expected: null, records: 250, stages, stage_records: 250, target_calls: 1234 });
    expect(run.targetCalls).toBe(1234);
    expect(writeCallsText(1234, 10)).toBe("1,234 write calls to the target (123/s)");
    expect(writeCallsText(12, 4)).toBe("12 write calls to the target (3.0/s)");
  });

  it("estimates the time left from the expected total and the rate, and charts the rate", async () => {
    let run = applyEvent(base, { event: "page", entity: "products", page_no: 1, counts, rows_per_s: 100, expected: 1250, records: 250, stages, stage_records: 250, target_calls: null });
    run = applyEvent(run, {
      event: "page",
      entity: "products",
      page_no: 2,
      counts: { ...counts, fetched: 500 },
      rows_per_s: 125,
      expected: null,
      records: 250,
      stages,
      stage_records: 500,
      target_calls: null,
    });
    expect(run.expected["products"]).toBe(1250);
    expect(etaSeconds(run, "products")).toBe(6);
    expect(run.rate.map((s) => s.rowsPerS)).toEqual([100, 125]);
    const { RateChart } = await import("./PipelinesScreen");
    render(<RateChart samples={[{ t: 0.5, rowsPerS: 100 }, { t: 1.5, rowsPerS: 200 }]} />);
    expect(screen.getByTestId("rate-chart").querySelector("polyline")?.getAttribute("points")).toBe("64.0,69.0 496.0,20.0");
    // Axes with units: rows/s from 0 to the peak, seconds from the first sample to the last.
    expect(screen.getByTestId("rate-axis-y").textContent).toBe("2001000rows/s");
    expect(screen.getByTestId("rate-axis-x").textContent).toBe("0.0 s0.5 s1.0 s");
  });

  it("says the run waits for the target while the connection is lost, until the next page lands", () => {
    const waiting = applyEvent(base, {
      event: "waiting",
      entity: "products",
      on: "target",
      message: "Connection reset by peer",
      waited_s: 3,
      budget_s: 120,
    });
    expect(waiting.waiting).toBe("products: waiting for the target (3 s of 120 s) — Connection reset by peer");
    const back = applyEvent(waiting, { event: "page", entity: "products", page_no: 2, counts, rows_per_s: 90, expected: null, records: 250, stages, stage_records: 250, target_calls: null });
    expect(back.waiting).toBeNull();
  });

  it("takes status and error from the finished event", () => {
    const next = applyEvent(base, { event: "finished", summary: { ...summary, status: "failed", error: "boom" } });
    expect(next.status).toBe("failed");
    expect(next.error).toBe("boom");
  });
});

describe("stage rates", () => {
  it("divides the records by each stage's own time, over every entity, and names the slowest", () => {
    const rates = stageRates({
      a: { times: { batches: 2, fetch_ms: 1000, transform_ms: 100, ingest_ms: 500 }, records: 2000 },
      b: { times: { batches: 1, fetch_ms: 1000, transform_ms: 100, ingest_ms: 500 }, records: 2000 },
    });
    expect(rates).toEqual([
      { stage: "fetch", rowsPerS: 2000 },
      { stage: "transform", rowsPerS: 20000 },
      { stage: "ingest", rowsPerS: 4000 },
    ]);
    expect(stageRates({})).toBeNull();
  });
});
