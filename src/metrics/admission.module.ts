import { Module } from '@nestjs/common';
import { AdmissionControl } from './admission-control.service.js';

/** Admission control: one instance per app, asked where sessions are created, read by the metrics. */
@Module({ providers: [AdmissionControl], exports: [AdmissionControl] })
export class AdmissionModule {}
