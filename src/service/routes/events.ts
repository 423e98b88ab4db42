/**
 * Server-Sent Events: one job's changes until its final state (`/v1/jobs/:id/events`), and every
 * job's changes for as long as the client stays (`/v1/events`, what the dashboard follows). Both
 * come from the store's change events, at most one frame per job per 100 ms.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { caller, type ServiceContext, view } from '../context.js';
import { FINAL_STATES } from '../jobs.js';

/** How often one job's frames may come, at most. */
const FRAME_MS = 100;

interface Stream {
  /** Writes one `event: job` frame. */
  send(data: unknown): void;
  /** Ends the stream (the client gone, the job final, the service stopping): idempotent. */
  close(): void;
}

/**
 * Takes the response over as an event stream: its headers, a closer the shutdown can call, and
 * `onClose` run once whatever ends it.
 */
function openStream(
  ctx: ServiceContext,
  request: FastifyRequest,
  reply: FastifyReply,
  onClose: () => void,
): Stream {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-correlation-id': request.correlationId,
  });
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    onClose();
    ctx.streams.delete(close);
    res.end();
  };
  ctx.streams.add(close);
  request.raw.on('close', close);
  return {
    send: (data) => {
      if (open) res.write(`event: job\ndata: ${JSON.stringify(data)}\n\n`);
    },
    close,
  };
}

export function eventRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const { jobs } = ctx;

  /** The job as it is now, again while its state or progress changes, and last in its final state. */
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/events', async (request, reply) => {
    const tenant = caller(request).tenant;
    const id = jobs.get(request.params.id, tenant).id;
    let timer: NodeJS.Timeout | undefined;
    const onChange = (changed: string) => {
      if (changed === id && !timer) timer = setTimeout(frame, FRAME_MS);
    };
    const stream = openStream(ctx, request, reply, () => {
      clearTimeout(timer);
      jobs.changes.off('change', onChange);
    });
    function frame(): void {
      timer = undefined;
      let job: ReturnType<typeof jobs.get>;
      try {
        job = jobs.get(id, tenant);
      } catch {
        // Deleted meanwhile: nothing more will come.
        stream.close();
        return;
      }
      stream.send(view(job));
      if (FINAL_STATES.includes(job.state)) stream.close();
    }
    jobs.changes.on('change', onChange);
    frame();
  });

  /**
   * Every job of the caller's tenant as it changes: the job as GET /v1/jobs/:id gives it, or
   * `{ id, deleted: true }` for one of its jobs deleted (another tenant's jobs are never named).
   */
  app.get('/v1/events', async (request, reply) => {
    const tenant = caller(request).tenant;
    const due = new Map<string, NodeJS.Timeout>();
    /** This stream's jobs seen so far: only those are told deleted. */
    const mine = new Set<string>();
    const frame = (id: string) => {
      due.delete(id);
      try {
        stream.send(view(jobs.get(id, tenant)));
        mine.add(id);
      } catch {
        if (mine.delete(id)) stream.send({ id, deleted: true });
      }
    };
    const onChange = (id: string) => {
      if (!due.has(id)) due.set(id, setTimeout(frame, FRAME_MS, id));
    };
    const stream = openStream(ctx, request, reply, () => {
      for (const timer of due.values()) clearTimeout(timer);
      jobs.changes.off('change', onChange);
    });
    reply.raw.write(': following every job\n\n');
    jobs.changes.on('change', onChange);
  });
}
