// A static import, so the bundler keeps cosmiconfig's CommonJS named export; loaded lazily by load.ts.
import { cosmiconfig } from 'cosmiconfig';

/** Searches from the starting folder up to `stopDir`, the repository root. */
export function explorer(stopDir: string) {
  return cosmiconfig('deployctl', { stopDir });
}
