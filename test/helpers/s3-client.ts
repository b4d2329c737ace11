// An independent S3 client (the AWS SDK) on the shared radosgw: what the
// tests use to set up and check objects beside our own s3 backend. Kept out of
// radosgw.ts, which test/setup.ts loads for every run.
import {S3Client} from '@aws-sdk/client-s3'

import type {Radosgw} from './radosgw.js'

/** An SDK client for `gateway`, with the checksums radosgw accepts. */
export function gatewayClient(gateway: Radosgw): S3Client {
  return new S3Client({
    endpoint: gateway.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {accessKeyId: gateway.accessKeyId, secretAccessKey: gateway.secretAccessKey},
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}
