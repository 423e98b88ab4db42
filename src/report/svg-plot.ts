/** An SVG scatter plot of a clustering in its first two principal components. */
import type { Backend } from '../backends/backend.js';
import type { Matrix } from '../core/matrix.js';
import { Random } from '../core/random.js';
import { fitPca, pcaTransform } from '../linalg/pca.js';

/** Colour-blind-safe palette (Okabe-Ito, then Tol's muted), repeated past its length. */
const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#F0E442',
  '#000000',
  '#332288',
  '#88CCEE',
  '#44AA99',
  '#117733',
  '#999933',
  '#DDCC77',
  '#CC6677',
  '#882255',
];

/** Points drawn at most; a seeded sample above keeps the file small and the plot readable. */
const MAX_POINTS = 20_000;

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PlotInput {
  readonly points: Matrix;
  readonly labels: Int32Array;
  readonly centroids?: Matrix | undefined;
  readonly title: string;
  readonly seed?: number;
  /** Runs the PCA's kernels. */
  readonly backend: Backend;
}

/** Renders the plot as an SVG document. */
export async function renderClusterPlot({
  points,
  labels,
  centroids,
  title,
  seed = 0,
  backend,
}: PlotInput): Promise<string> {
  const width = 720;
  const height = 560;
  const margin = { left: 60, right: 150, top: 48, bottom: 52 };
  const pca = await fitPca(backend, points, 2);
  const oneDim = pca.nComponents < 2;
  const xy = (await pcaTransform(backend, pca, points)).data;
  const m = pca.nComponents;
  const at = (i: number, c: number) => (c < m ? xy[i * m + c]! : 0);
  const cxy = centroids ? (await pcaTransform(backend, pca, centroids)).data : undefined;

  let minX = Number.POSITIVE_INFINITY;
  let maxX = Number.NEGATIVE_INFINITY;
  let minY = Number.POSITIVE_INFINITY;
  let maxY = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < points.rows; i++) {
    minX = Math.min(minX, at(i, 0));
    maxX = Math.max(maxX, at(i, 0));
    minY = Math.min(minY, at(i, 1));
    maxY = Math.max(maxY, at(i, 1));
  }
  // A margin of 4% keeps points off the frame.
  const padX = (maxX - minX || 1) * 0.04;
  const padY = (maxY - minY || 1) * 0.04;
  minX -= padX;
  maxX += padX;
  minY -= padY;
  maxY += padY;
  const spanX = maxX - minX;
  const spanY = maxY - minY;
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sx = (v: number) => margin.left + ((v - minX) / spanX) * plotW;
  const sy = (v: number) => margin.top + plotH - ((v - minY) / spanY) * plotH;

  const indices =
    points.rows > MAX_POINTS
      ? Array.from(new Random(seed).sample(points.rows, MAX_POINTS)).sort((a, b) => a - b)
      : null;
  const circles: string[] = [];
  const draw = (i: number) => {
    const colour = PALETTE[labels[i]! % PALETTE.length];
    circles.push(
      `<circle cx="${sx(at(i, 0)).toFixed(1)}" cy="${sy(at(i, 1)).toFixed(1)}" r="3" fill="${colour}"/>`,
    );
  };
  if (indices) indices.forEach(draw);
  else for (let i = 0; i < points.rows; i++) draw(i);

  const k = Math.max(0, ...labels) + 1;
  const counts = new Array<number>(k).fill(0);
  for (const l of labels) counts[l]!++;
  const legend = counts
    .map((c, j) => {
      const y = margin.top + 10 + j * 20;
      return `<circle cx="${width - margin.right + 20}" cy="${y}" r="5" fill="${PALETTE[j % PALETTE.length]}"/><text x="${width - margin.right + 32}" y="${y + 4}">cluster ${j} (${c})</text>`;
    })
    .slice(0, 24)
    .join('');
  const marks = cxy
    ? Array.from({ length: centroids!.rows }, (_, j) => {
        const x = sx(cxy[j * m]!);
        const y = sy(m > 1 ? cxy[j * m + 1]! : 0);
        return `<path d="M${(x - 7).toFixed(1)},${(y - 7).toFixed(1)}l14,14m0,-14l-14,14" stroke="#000" stroke-width="3"/><path d="M${(x - 7).toFixed(1)},${(y - 7).toFixed(1)}l14,14m0,-14l-14,14" stroke="${PALETTE[j % PALETTE.length]}" stroke-width="1.5"/>`;
      }).join('')
    : '';
  const pct = (r: number | undefined) => `${((r ?? 0) * 100).toFixed(1)}%`;
  const note = indices ? ` (${MAX_POINTS} of ${points.rows} points shown)` : '';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${margin.left}" y="28" font-size="16">${escapeXml(title)}${escapeXml(note)}</text>`,
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<g fill-opacity="0.75">${circles.join('')}</g>`,
    marks,
    `<text x="${margin.left + plotW / 2}" y="${height - 16}" text-anchor="middle">PC1 (${pct(pca.explainedVarianceRatio[0])} of variance)</text>`,
    oneDim
      ? ''
      : `<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">PC2 (${pct(pca.explainedVarianceRatio[1])} of variance)</text>`,
    legend,
    '</svg>',
    '',
  ].join('\n');
}
