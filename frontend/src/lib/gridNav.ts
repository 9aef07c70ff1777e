// Moving between the cells of a grid with the keyboard, the same in every grid of the page: arrow
// keys one cell (stopping at the edges), Home and End to the row's first and last.

/** The cell a key moves to from (r, c) in a rows × cols grid, or null when the key does not move. */
export function gridStep(key: string, r: number, c: number, rows: number, cols: number): [number, number] | null {
  switch (key) {
    case 'ArrowLeft':
      return [r, Math.max(0, c - 1)];
    case 'ArrowRight':
      return [r, Math.min(cols - 1, c + 1)];
    case 'ArrowUp':
      return [Math.max(0, r - 1), c];
    case 'ArrowDown':
      return [Math.min(rows - 1, r + 1), c];
    case 'Home':
      return [r, 0];
    case 'End':
      return [r, cols - 1];
    default:
      return null;
  }
}
