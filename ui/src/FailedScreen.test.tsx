import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { FailedGroup, FailedRow, PendingChild } from "./bindings";
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
    group: `${entity} · ${stage} · ${message}`,
  };
}

function groupOf(rows: FailedRow[]): FailedGroup[] {
  const groups = new Map<string, FailedGroup>();
  for (const r of rows.filter((r) => r.status !== "retried")) {
    const g = groups.get(r.group) ?? { group: r.group, entity: r.entity, stage: r.stage, error: r.message, failed: 0, dead: 0 };
    g.failed += 1;
    groups.set(r.group, g);
  }
  return [...groups.values()];
}

const queue = (records: FailedRow[]) => ({ records, groups: groupOf(records) });

// jsdom has no layout: give elements the size the virtualised list would have on screen.
beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 480 });
  Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 600 });
});

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("failed records browser", () => {
  it("filters, shows the record, and retries it with the analyst's edit", async () => {
    const retries: unknown[] = [];
    let status = "failed";
    mockIPC((cmd, args) => {
      if (cmd === "failed_queue") {
        return queue([
          { ...row(7, "invoice", "normalize", 'field "Amount": expected a number but got "TBD"', { Amount: "TBD" }), status },
          row(9, "customer", "validate", 'business key field "_id" is missing or null', { Name: "x" }),
        ]);
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
      if (cmd === "failed_queue") return queue([]);
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

  it("keeps ten thousand records smooth, groups them by error, retries a group and opens a record beside the list", async () => {
    const records: FailedRow[] = [];
    for (let i = 1; i <= 10_000; i++) {
      const missing = i % 3 === 0;
      const r = missing
        ? row(i, "items", "validate", 'business key field "id" is missing or null', { name: `item ${i}` })
        : row(i, "items", "validate", 'field "name" contains a NUL character (U+0000), which the target cannot store', { id: i });
      records.push(i === 2 ? { ...r, processed: JSON.stringify({ id: 2, name: "bad\u0000name" }) } : r);
    }
    const retries: { ids: number[] }[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "failed_queue") return queue(records);
      if (cmd === "pending_children") return [];
      if (cmd === "retry_failed") {
        retries.push(args as { ids: number[] });
        return { retried: 3333, inserted: 0, updated: 0, unchanged: 0, waiting: 0, still_failing: [1] };
      }
      throw new Error(`unexpected ${cmd}`);
    });
    render(<FailedScreen pipeline="Items" />);
    await screen.findByTestId("failed-row-1");
    // Only the rows in view are in the DOM.
    expect(document.querySelectorAll("[data-testid^='failed-row-']").length).toBeLessThan(60);
    expect(screen.getByTestId("failed-retry-all").textContent).toBe("Retry all shown (10,000)");

    const biggest = screen.getByTestId("failed-group-0");
    expect(biggest.textContent).toContain("6,667");
    expect(biggest.textContent).toContain("NUL character");
    expect(screen.getByTestId("failed-group-1").textContent).toContain("3,333");

    fireEvent.click(screen.getByTestId("failed-group-show-1"));
    expect(screen.getByTestId("failed-retry-all").textContent).toBe("Retry all shown (3,333)");
    expect(screen.queryByTestId("failed-row-1")).toBeNull();
    expect(screen.getByTestId("failed-row-3")).toBeTruthy();

    fireEvent.click(screen.getByTestId("failed-group-retry-1"));
    await waitFor(() => expect(retries).toHaveLength(1));
    expect(retries[0]?.ids).toHaveLength(3333);
    expect(retries[0]?.ids.every((id) => id % 3 === 0)).toBe(true);
    // Something still failed: the notice is a warning, and it can be dismissed.
    const notice = await screen.findByTestId("failed-notice");
    expect(notice.className).toBe("warning");
    fireEvent.click(screen.getByLabelText("Dismiss"));
    expect(screen.queryByTestId("failed-notice")).toBeNull();

    fireEvent.click(screen.getByTestId("failed-group-show-1"));
    fireEvent.click(screen.getByTestId("failed-row-2"));
    const detail = screen.getByTestId("failed-detail");
    // Beside the list, in the same row of the layout.
    expect(detail.parentElement?.className).toBe("dlq");
    expect(screen.getByTestId("failed-processed").textContent).toContain('"name": "bad\\u0000name"');
  });

  it("loads the queue again when it changed elsewhere", async () => {
    let calls = 0;
    mockIPC((cmd) => {
      if (cmd === "failed_queue") {
        calls += 1;
        return queue(calls === 1 ? [row(1, "items", "normalize", "x", {})] : []);
      }
      if (cmd === "pending_children") return [];
      throw new Error(`unexpected ${cmd}`);
    });
    const { rerender } = render(<FailedScreen pipeline="Items" stamp="1/0" />);
    await screen.findByTestId("failed-row-1");
    rerender(<FailedScreen pipeline="Items" stamp="0/0" />);
    await screen.findByTestId("failed-empty");
  });
});
