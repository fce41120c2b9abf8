import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";
import type { FailedRow, PendingChild } from "./bindings";
import { FailedScreen } from "./FailedScreen";

function row(id: number, entity: string, stage: string, message: string, raw: unknown): FailedRow {
  return {
    id,
    run_id: "r1",
    entity,
    page_no: 1,
    record_index: id,
    stage,
    error_type: "type",
    message,
    raw: JSON.stringify(raw),
    processed: null,
    status: "failed",
    retries: 0,
    created_at: "2026-11-22T00:00:00Z",
  };
}

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("failed records browser", () => {
  it("filters, shows the record, and retries it with the analyst's edit", async () => {
    const retries: unknown[] = [];
    let status = "failed";
    mockIPC((cmd, args) => {
      if (cmd === "failed_records") {
        return [
          { ...row(7, "invoice", "normalize", 'field "Amount": expected a number but got "TBD"', { Amount: "TBD" }), status },
          row(9, "customer", "validate", 'business key field "_id" is missing or null', { Name: "x" }),
        ];
      }
      if (cmd === "retry_failed") {
        retries.push(args);
        status = "retried";
        return { retried: 1, inserted: 1, updated: 0, unchanged: 0, waiting: 0, still_failing: [] };
      }
      if (cmd === "pending_children") return [];
      throw new Error(`unexpected ${cmd}`);
    });
    render(<FailedScreen pipeline="Demo" />);
    await screen.findByTestId("failed-row-7");
    expect(screen.getByTestId("failed-row-9")).toBeTruthy();

    fireEvent.change(screen.getByTestId("failed-filter-stage"), { target: { value: "normalize" } });
    expect(screen.queryByTestId("failed-row-9")).toBeNull();

    fireEvent.click(screen.getByTestId("failed-row-7"));
    const raw = screen.getByTestId("failed-raw") as HTMLTextAreaElement;
    expect(raw.value).toBe('{\n  "Amount": "TBD"\n}');
    fireEvent.change(raw, { target: { value: '{"Amount": 12.5}' } });
    expect(screen.getByTestId("failed-retry").textContent).toBe("Retry with my edit");
    fireEvent.click(screen.getByTestId("failed-retry"));

    await waitFor(() => expect(screen.getByTestId("failed-notice").textContent).toContain("1 retried"));
    expect(retries[0]).toMatchObject({ name: "Demo", ids: [7], edits: { 7: '{"Amount": 12.5}' } });
    await waitFor(() => expect(screen.queryByTestId("failed-row-7")).toBeNull());
  });

  it("lists records waiting for their parent and checks them on request", async () => {
    const child = (id: number, status: string, tries: number): PendingChild => ({
      id,
      pipeline: "Shop",
      entity: "invoice",
      key_hash: `k${id}`,
      field: "Customer",
      parent_entity: "customer",
      parent_key: `"1672531200000x${id}"`,
      raw: "{}",
      run_id: "r1",
      status,
      tries,
      last_try_at: null,
      created_at: "2026-11-22T00:00:00Z",
    });
    let waiting = [child(1, "pending", 2), child(2, "dead", 5)];
    const checks: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "failed_records") return [];
      if (cmd === "pending_children") return waiting;
      if (cmd === "retry_pending_children") {
        checks.push(args);
        waiting = [child(2, "dead", 5)];
        return { tried: 2, landed: 1, waiting: 1, dead: 0, failed: 0 };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(<FailedScreen pipeline="Shop" />);
    const dead = await screen.findByTestId("waiting-row-2");
    expect(dead.textContent).toContain("5 / 5");
    expect(dead.textContent).toContain("dead");
    expect(screen.getByTestId("waiting-row-1").textContent).toContain("1672531200000x1");

    fireEvent.click(screen.getByTestId("waiting-retry"));
    await waitFor(() => expect(screen.getByTestId("waiting-notice").textContent).toBe("2 checked: 1 landed, 1 still waiting"));
    expect(checks[0]).toMatchObject({ name: "Shop" });
    await waitFor(() => expect(screen.queryByTestId("waiting-row-1")).toBeNull());
  });
});
