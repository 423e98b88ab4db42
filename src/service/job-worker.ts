/**
 * The script of a worker thread of the service's pool (runner.ts): it runs the jobs the main
 * thread sends it (job-thread.ts).
 */
import { parentPort } from 'node:worker_threads';
import { serveJobs } from './job-thread.js';

if (parentPort) serveJobs(parentPort);
