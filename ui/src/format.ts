// How the screens write values for a person to read.

/** A moment as the analyst reads it: weekday, date and time in their own time zone. */
export function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}
