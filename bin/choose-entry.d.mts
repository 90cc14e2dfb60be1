/** dist/main/cli.js when it is newer than every file under src/, else src/main/cli.ts (absolute paths). */
export function chooseEntry(): string;
