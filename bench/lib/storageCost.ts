/**
 * What storing interaction rows costs per month, from the bytes per row a benchmark measured. The
 * prices are us-east-1 list prices per GB-month (first 50 TB) as AWS published them in 2025; a
 * reader with a discount or another region scales the table by their own. Hot rows are priced as
 * RDS for MySQL gp3 storage, counted once for the primary and once for one replica, which is the
 * least a production database of this kind keeps; backups and IOPS are left out, which flatters
 * the hot side.
 */
export const PRICES_PER_GB_MONTH = {
  hotMysqlGp3: 0.115,
  s3Standard: 0.023,
  s3StandardIa: 0.0125,
  s3GlacierIr: 0.004,
} as const;
/** PUT requests, per 1,000, by class: an archive writes one object per chunk (and a manifest per generation). */
export const PUT_PRICE_PER_1000 = { s3Standard: 0.005, s3StandardIa: 0.01, s3GlacierIr: 0.02 } as const;
/** IA and Glacier IR bill every object as at least 128 KB. */
export const MIN_BILLED_OBJECT_BYTES = 128 * 1024;
const GB = 1024 ** 3;

export interface CostInput {
  /** Messages and rows each: the platform being priced. */
  messages: number;
  rowsPerMessage: number;
  hotBytesPerRow: number;
  archivedBytesPerRow: number;
  rowsPerChunk: number;
}

export interface CostLine {
  where: string;
  gigabytes: number;
  dollarsPerMonth: number;
  /** One-time cost of writing the objects (PUT requests), for the archive tiers. */
  oneTimeDollars: number | null;
}

export function monthlyCost(input: CostInput): CostLine[] {
  const rows = input.messages * input.rowsPerMessage;
  const hotGb = (rows * input.hotBytesPerRow) / GB;
  const chunksPerMessage = Math.ceil(input.rowsPerMessage / input.rowsPerChunk);
  const objects = input.messages * (chunksPerMessage + 1);
  const objectBytes = input.rowsPerChunk * input.archivedBytesPerRow;
  const archivedGb = (rows * input.archivedBytesPerRow) / GB;
  // Below 128 KB an object is billed as 128 KB in IA and Glacier IR.
  const billedGb = ((rows / input.rowsPerChunk) * Math.max(objectBytes, MIN_BILLED_OBJECT_BYTES)) / GB;
  const puts = (price: number) => (objects / 1000) * price;
  return [
    {
      where: 'hot, MySQL (primary + one replica, gp3)',
      gigabytes: hotGb * 2,
      dollarsPerMonth: hotGb * 2 * PRICES_PER_GB_MONTH.hotMysqlGp3,
      oneTimeDollars: null,
    },
    {
      where: 'archived, S3 Standard',
      gigabytes: archivedGb,
      dollarsPerMonth: archivedGb * PRICES_PER_GB_MONTH.s3Standard,
      oneTimeDollars: puts(PUT_PRICE_PER_1000.s3Standard),
    },
    {
      where: 'archived, S3 Standard-IA',
      gigabytes: billedGb,
      dollarsPerMonth: billedGb * PRICES_PER_GB_MONTH.s3StandardIa,
      oneTimeDollars: puts(PUT_PRICE_PER_1000.s3StandardIa),
    },
    {
      where: 'archived, S3 Glacier Instant Retrieval',
      gigabytes: billedGb,
      dollarsPerMonth: billedGb * PRICES_PER_GB_MONTH.s3GlacierIr,
      oneTimeDollars: puts(PUT_PRICE_PER_1000.s3GlacierIr),
    },
  ];
}
