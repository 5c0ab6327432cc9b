import type { ParsedRecord } from './parser';

export interface BatchSummary {
  rowsRead: number;
  accepted: number;
  rejected: number;
  /** The first `maxRejections` rejections in row order. */
  rejections: { rowNumber: number; reason: string }[];
  rejectionsTruncated: boolean;
}

/** Counts a parse as it streams by, so `accepted + rejected === rowsRead` holds at every moment. */
export class BatchTally {
  private rowsRead = 0;
  private accepted = 0;
  private rejected = 0;
  private readonly rejections: { rowNumber: number; reason: string }[] = [];
  private rejectionsTruncated = false;

  constructor(private readonly maxRejections = 1000) {}

  add(record: ParsedRecord<unknown>): void {
    this.rowsRead++;
    if (record.kind === 'accepted') {
      this.accepted++;
      return;
    }
    this.rejected++;
    if (this.rejections.length < this.maxRejections) {
      this.rejections.push({ rowNumber: record.rowNumber, reason: record.reason });
    } else {
      this.rejectionsTruncated = true;
    }
  }

  summary(): BatchSummary {
    return {
      rowsRead: this.rowsRead,
      accepted: this.accepted,
      rejected: this.rejected,
      rejections: this.rejections.slice(),
      rejectionsTruncated: this.rejectionsTruncated,
    };
  }
}
