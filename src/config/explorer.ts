// A static import, so the bundler keeps cosmiconfig's CommonJS named export; loaded lazily by load.ts.
import { cosmiconfig } from 'cosmiconfig';

export function explorer(cwd: string) {
  return cosmiconfig('deployctl', { stopDir: cwd });
}
