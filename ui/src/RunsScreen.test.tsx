import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { RunsScreen, scheduleOf, stagesText } from "./RunsScreen";
import type { RunHistoryRow, UndoReport } from "./bindings";

describe("schedule editor", () => {
  it("writes the draft as the pipeline file's [schedule], leaving out what is not set", () => {
    const base = { enabled: true, cron: "0 19 * * *", timezone: "Europe/Berlin", windowed: true, start: "19:00", end: "07:00", days: "3" };
    expect(scheduleOf(base)).toEqual({
      cron: "0 19 * * *",
      timezone: "Europe/Berlin",
      window: { start: "19:00", end: "07:00" },
      days_to_complete: 3,
    });
    expect(scheduleOf({ ...base, windowed: false, days: "" })).toEqual({ cron: "0 19 * * *", timezone: "Europe/Berlin" });
    expect(scheduleOf({ ...base, enabled: false })).toBeNull();
  });
});

describe("schedule preview", () => {
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it("lists the next runs as local times with their weekday, and hides them while the schedule is off", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_runs") return { history: [], jobs: [] };
      if (cmd === "alert_webhook") return "none";
      if (cmd === "pipeline_schedule") {
        return { schedule: { cron: "0 19 * * *", timezone: "UTC" }, state: { missed: 0 }, preview: null };
      }
      if (cmd === "schedule_preview") {
        return { description: "At 19:00", next_runs: ["2026-12-04T19:00:00+00:00", "2026-12-05T19:00:00+00:00"], window: null };
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<RunsScreen pipeline="erp" />);
    const preview = await screen.findByTestId("schedule-preview");
    const items = Array.from(preview.querySelectorAll("li")).map((li) => li.textContent ?? "");
    expect(items).toHaveLength(2);
    expect(items[0]).toBe(new Date("2026-12-04T19:00:00Z").toLocaleString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }));
    expect(items[0]).not.toContain("T19:00");
    expect(items[0]).toMatch(/Fri/);
    fireEvent.click(screen.getByTestId("schedule-enabled"));
    await waitFor(() => expect(screen.queryByTestId("schedule-preview")).toBeNull());
  });
});

describe("run history", () => {
  it("says where a run's time went, stage by stage", () => {
    expect(stagesText({ batches: 12, fetch_ms: 1234, transform_ms: 400, ingest_ms: 2049 })).toBe(
      "fetch 1.2 s · transform 0.4 s · ingest 2.0 s (12 batches)",
    );
    expect(stagesText({ batches: 0, fetch_ms: 0, transform_ms: 0, ingest_ms: 0 })).toBe("no batches");
  });
});

describe("undo", () => {
  const counts = (inserted: number, updated: number, deleted: number) => ({
    fetched: 20_000,
    inserted,
    updated,
    deleted,
    skipped: 0,
    failed: 0,
    pending: 0,
    conflicts: 0,
  });
  const row = (id: string, c: ReturnType<typeof counts>, undone_at: string | null = null): RunHistoryRow => ({
    run: { id, status: "completed", started_at: "2026-12-03T10:00:00Z", finished_at: null, duration_ms: 1000, error: null, held_deletes: 0, undone_at },
    pipeline: "erp",
    started_by: "manual",
    counts: c,
    stages: { batches: 0, fetch_ms: 0, transform_ms: 0, ingest_ms: 0 },
    outcome: "completed",
  });
  const report: UndoReport = {
    run_id: "run-2",
    pipeline: "erp",
    undone: false,
    tables: [{ table: "items", removed: 700, restored: 1500 }],
    withdrawn: { failed_records: 3, waiting_children: 0, conflicts: 0 },
  };

  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it("offers undo on the latest run that changed the target, says what will change, and undoes on confirmation", async () => {
    const calls: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "list_runs") {
        // Newest first: an unchanged re-sync, the run that changed the table, the first sync.
        return { history: [row("run-3", counts(0, 0, 0)), row("run-2", counts(700, 1000, 500)), row("run-1", counts(20_000, 0, 0))], jobs: [] };
      }
      if (cmd === "pipeline_schedule") return { schedule: null, state: {}, preview: null };
      if (cmd === "alert_webhook") return "none";
      if (cmd === "schedule_preview") return { description: "", next_runs: [], window: null };
      if (cmd === "undo_preview") return report;
      if (cmd === "undo_run") return { ...report, undone: true };
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<RunsScreen pipeline="erp" />);
    const undo = await screen.findByTestId("undo-run-2");
    expect(screen.queryByTestId("undo-run-3")).toBeNull();
    expect(screen.queryByTestId("undo-run-1")).toBeNull();
    fireEvent.click(undo);
    const confirm = await screen.findByTestId("undo-confirm");
    expect(confirm.textContent).toContain("items: 700 row(s) the run inserted removed, 1,500 row(s) it updated or deleted restored");
    expect(confirm.textContent).toContain("Withdrawn with the run: 3 failed record(s).");
    expect(calls.some(([cmd]) => cmd === "undo_run")).toBe(false);
    fireEvent.click(screen.getByTestId("undo-confirm-button"));
    await waitFor(() => expect(screen.getByTestId("undo-done").textContent).toContain("Run run-2 undone."));
    expect(calls).toContainEqual(["undo_run", { runId: "run-2" }]);
  });

  it("shows why a run cannot be undone, and marks undone runs", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_runs") return { history: [row("run-2", counts(700, 0, 0), "2026-12-03T11:00:00Z"), row("run-1", counts(5, 0, 0))], jobs: [] };
      if (cmd === "pipeline_schedule") return { schedule: null, state: {}, preview: null };
      if (cmd === "alert_webhook") return "none";
      if (cmd === "schedule_preview") return { description: "", next_runs: [], window: null };
      if (cmd === "undo_preview") throw { kind: "invalid_input", message: "failed records were retried since" };
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<RunsScreen pipeline="erp" />);
    expect((await screen.findByTestId("undone-run-2")).textContent).toContain("undone");
    expect(screen.queryByTestId("undo-run-2")).toBeNull();
    fireEvent.click(await screen.findByTestId("undo-run-1"));
    await waitFor(() => expect(screen.getByRole("alert").textContent).toContain("failed records were retried since"));
    expect(screen.queryByTestId("undo-confirm")).toBeNull();
  });

  it("opens a run's log and can show only its warnings and errors", async () => {
    const line = (level: string, event: string, message: string) => ({ ts: "2026-12-03T10:00:01.000Z", level, event, message, fields: {} });
    mockIPC((cmd, args) => {
      if (cmd === "list_runs") return { history: [row("run-1", counts(5, 0, 0))], jobs: [] };
      if (cmd === "pipeline_schedule") return { schedule: null, state: {}, preview: null };
      if (cmd === "alert_webhook") return "none";
      if (cmd === "schedule_preview") return { description: "", next_runs: [], window: null };
      if (cmd === "run_log") {
        expect(args).toEqual({ runId: "run-1" });
        return [
          line("info", "started", "started erp: items"),
          line("warn", "record_failed", "items: record 7 of page 1 failed in transform: price: not a number"),
          line("error", "finished", "run failed: the target refused"),
        ];
      }
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<RunsScreen pipeline="erp" />);
    fireEvent.click(await screen.findByTestId("log-run-1"));
    await waitFor(() => expect(screen.getAllByTestId("log-line")).toHaveLength(3));
    fireEvent.click(screen.getByTestId("log-problems-only"));
    const shown = screen.getAllByTestId("log-line").map((l) => l.textContent);
    expect(shown).toHaveLength(2);
    expect(shown[0]).toContain("record 7 of page 1");
    expect(shown[1]).toContain("run failed");
    fireEvent.click(screen.getByTestId("log-close"));
    expect(screen.queryByTestId("run-log")).toBeNull();
  });
});

describe("alerts", () => {
  afterEach(() => {
    cleanup();
    clearMocks();
  });

  it("keeps a typed webhook URL in the keychain, forgets it in the form, and sends a test alert", async () => {
    const calls: [string, unknown][] = [];
    let saved = false;
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "list_runs") return { history: [], jobs: [] };
      if (cmd === "pipeline_schedule") return { schedule: null, state: {}, preview: null };
      if (cmd === "schedule_preview") return { description: "", next_runs: [], window: null };
      if (cmd === "alert_webhook") return saved ? "keychain" : "none";
      if (cmd === "save_alert_webhook") {
        saved = true;
        return null;
      }
      if (cmd === "test_alert") return null;
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<RunsScreen pipeline="erp" />);
    await waitFor(() => expect(screen.getByTestId("alert-webhook-source").textContent).toContain("none"));
    expect((screen.getByTestId("test-alert") as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(screen.getByTestId("alert-webhook-url"), { target: { value: "https://hooks.example/T/B/X" } });
    fireEvent.click(screen.getByTestId("save-alert-webhook"));
    await waitFor(() => expect(screen.getByTestId("alert-webhook-source").textContent).toContain("keychain"));
    expect((screen.getByTestId("alert-webhook-url") as HTMLInputElement).value).toBe("");
    expect(calls).toContainEqual(["save_alert_webhook", { url: "https://hooks.example/T/B/X" }]);
    fireEvent.click(screen.getByTestId("test-alert"));
    await waitFor(() => expect(screen.getByTestId("alert-note").textContent).toContain("Test alert sent"));
  });
});
