import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { emit } from "@tauri-apps/api/event";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { App } from "./App";
import type { EntityView } from "./bindings";

const products: EntityView = {
  report: {
    entity: "products",
    table: "products",
    model: "Products",
    fields: [{ source: "sku", field: "sku", column: "sku", type: "String", collides_with: [], note: "", changes: [], error: null }],
    indexes: [],
  },
  samples: {},
  evidence: {},
  excluded: [],
  business_key: ["sku"],
  key_missing: [],
  missing: [],
  key_candidates: ["sku"],
  overrides: { sku: { key: true } },
};

beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 460 });
  Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 1000 });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("unsaved changes", () => {
  it("asks before a tab switch drops the mapping's unsaved edits, and stays when asked to", async () => {
    mockIPC((cmd) => {
      if (cmd === "list_pipelines") {
        return [{ name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null }];
      }
      if (cmd === "busy_pipelines") return [];
      if (cmd === "attention") return { pipeline: "Demo", failed: 0, dead: 0, conflicts: 0 };
      if (cmd === "discover_mapping" || cmd === "preview_mapping") return [products];
      if (cmd === "list_conflicts") return [];
      throw new Error(`unexpected command ${cmd}`);
    });
    render(<App />);
    await screen.findByTestId("run-Demo");
    fireEvent.click(screen.getByTestId("tab-mapping"));
    const name = await screen.findByLabelText("Field name for sku");
    fireEvent.change(name, { target: { value: "stock_unit" } });

    fireEvent.click(screen.getByTestId("tab-conflicts"));
    const ask = await screen.findByTestId("unsaved-confirm");
    expect(ask.textContent).toContain("The mapping of Demo has changes you have not saved");
    fireEvent.click(screen.getByTestId("unsaved-stay"));
    expect(screen.queryByTestId("unsaved-confirm")).toBeNull();
    expect((screen.getByLabelText("Field name for sku") as HTMLInputElement).value).toBe("stock_unit");

    fireEvent.click(screen.getByTestId("tab-conflicts"));
    fireEvent.click(await screen.findByTestId("unsaved-leave"));
    await waitFor(() => expect(screen.queryByLabelText("Field name for sku")).toBeNull());
    expect(screen.getByTestId("tab-conflicts").className).toContain("active");
  });

  it("shows a failed scheduled run as a warning that leads to its screen and can be dismissed", async () => {
    mockIPC(
      (cmd) => {
        if (cmd === "list_pipelines") {
          return [
            { name: "Demo", source_kind: "demo", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null },
            { name: "erp", source_kind: "rest", target_kind: "sqlite", last_run: null, disabled: false, failed_records: 0, waiting_children: 0, open_conflicts: 0, next_run: null },
          ];
        }
        if (cmd === "busy_pipelines") return [];
        if (cmd === "attention") return { pipeline: null, failed: 0, dead: 0, conflicts: 0 };
        if (cmd === "list_runs") return { jobs: [], history: [] };
        if (cmd === "pipeline_schedule") return { schedule: null, state: { missed: 0, missed_since: null } };
        if (cmd === "alert_webhook") return "none";
        if (cmd === "schedule_preview") throw { kind: "invalid_input", message: "no schedule" };
        return null;
      },
      { shouldMockEvents: true },
    );
    render(<App />);
    await screen.findByTestId("run-Demo");
    await emit("scheduler", { action: "ended", pipeline: "erp", status: "failed", failed: 0, error: "cannot reach the source" });
    const news = await screen.findByTestId("scheduler-news");
    expect(news.className).toBe("warning");
    expect(news.textContent).toContain("erp: the scheduled run failed — cannot reach the source.");
    fireEvent.click(screen.getByTestId("scheduler-news-open"));
    await waitFor(() => expect(screen.getByTestId("tab-runs").className).toContain("active"));
    expect((screen.getByTestId("pipeline-picker") as HTMLSelectElement).value).toBe("erp");
    expect(screen.queryByTestId("scheduler-news")).toBeNull();

    await emit("scheduler", { action: "paused", pipeline: "erp", reason: "its window closed" });
    fireEvent.click(await screen.findByTestId("scheduler-news-close"));
    expect(screen.queryByTestId("scheduler-news")).toBeNull();
  });
});
