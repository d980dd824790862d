// Writes docs/api-reference.md, the API reference generated from operator/api (see operator/api/api-reference.ts).
// Run with `npm run generate`; operator/api/generated-api-reference.test.ts fails when the file is stale.
import { pathToFileURL } from 'node:url';
import { renderApiReference } from '../operator/api/api-reference.js';
import { toStructuralSchema } from '../operator/api/crd-generator.js';
import { DNS1123_SUBDOMAIN, QUANTITY_PATTERN, Timestamp } from '../operator/api/v1alpha1/common.js';
import { BACKUP_SCHEDULE_INFO, BACKUP_SCHEDULE_REFERENCE } from '../operator/api/v1alpha1/backupschedule.js';
import { ROLLBACK_PLAN_INFO, ROLLBACK_PLAN_REFERENCE } from '../operator/api/v1alpha1/rollbackplan.js';
import { writeGeneratedFiles } from './generate-crds.js';

export const API_REFERENCE_PATH = 'docs/api-reference.md';

// Long patterns on many fields: printed once instead of at every timestamp, object name and quantity.
const PATTERNS = {
  'date-time': toStructuralSchema(Timestamp).pattern as string,
  'object name': DNS1123_SUBDOMAIN.source,
  quantity: QUANTITY_PATTERN.source,
};

/** The generated file, keyed by its path relative to the repository root. */
export function expectedApiReferenceFiles(): Map<string, string> {
  const text = renderApiReference(
    [
      { info: ROLLBACK_PLAN_INFO, reference: ROLLBACK_PLAN_REFERENCE },
      { info: BACKUP_SCHEDULE_INFO, reference: BACKUP_SCHEDULE_REFERENCE },
    ],
    PATTERNS,
  );
  return new Map([[API_REFERENCE_PATH, text]]);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const rel of writeGeneratedFiles(expectedApiReferenceFiles())) console.log(`wrote ${rel}`);
}
