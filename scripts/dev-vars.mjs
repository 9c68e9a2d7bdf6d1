// Reads a variable from .dev.vars (the file `make dev` writes), for the dev scripts.
import { readFileSync, existsSync } from 'node:fs';

export function devVar(name, fallback) {
  if (!existsSync('.dev.vars')) return fallback;
  const line = readFileSync('.dev.vars', 'utf8').split('\n').find((l) => l.startsWith(`${name}=`));
  return line?.slice(name.length + 1).trim() || fallback;
}
