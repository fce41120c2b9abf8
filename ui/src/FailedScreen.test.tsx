import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it } from "vitest";
import type { FailedRow } from "./bindings";
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
        return { retried: 1, inserted: 1, updated: 0, unchanged: 0, still_failing: [] };
      }
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
});
