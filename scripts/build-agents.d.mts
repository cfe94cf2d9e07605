export const ASC_FLAGS: string[];
export const EXAMPLES_DIR: string;
export function buildAgent(
  source: string,
  out: string,
  o?: { force?: boolean; defines?: Record<string, number>; deps?: string[] },
): Promise<boolean>;
