// The version igord reports (--version, status, the control API); read by entry points without loading the daemon.
export const VERSION = "0.1.0";
