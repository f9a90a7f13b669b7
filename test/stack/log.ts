/** Progress lines for people watching `npm run up` or a CI log: short, prefixed, on stderr. */
export function say(message: string): void {
  process.stderr.write(`[stack] ${message}\n`);
}

/** A failure of the stack that names the component and where to look; printed without a stack trace. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}
