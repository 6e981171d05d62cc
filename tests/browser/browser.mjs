// Launches Debian's Chromium headless through playwright-core (which never
// downloads a browser): shared by check_page.mjs and dashboard.mjs.

import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';

export async function launch() {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    console.error(`chromium not found at ${executablePath} (apt-get install chromium, or set CHROMIUM_PATH)`);
    process.exit(1);
  }
  return chromium.launch({
    executablePath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
