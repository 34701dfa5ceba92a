/* dicom_shim.cpp: the one C++ file: DICOM reading, cine writing and the C-STORE SCP on DCMTK,
 * behind the C interface of dicom.h. Rendering goes through DicomImage with dcm2pnm's defaults
 * so a frame here is byte for byte what `dcm2pnm +Fa` writes. No exception or DCMTK status
 * escapes: every failure becomes an ev_error with the file's name in it. About 1,300 lines: it is
 * the only place DCMTK's C++ is seen, so reading, writing and the receiver (with its TLS layer)
 * stay in this one shim rather than spreading C++ over the tree. */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dccodec.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmimage/diregist.h"
#include "dcmtk/dcmimgle/dcmimage.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/scp.h"
#include "dcmtk/dcmnet/scpthrd.h"
#include "dcmtk/oflog/oflog.h"
#ifdef EV_DICOM_TLS
#include "dcmtk/dcmtls/tlslayer.h"
#endif

#include "dicom.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace {

int fail(ev_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail(ev_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Codecs and logging are process-wide in DCMTK: set them up once. DCMTK's own warnings would
 * otherwise go to stderr for every odd file; our errors say what matters. */
void dicom_global_init()
{
    static std::once_flag once;
    std::call_once(once, [] {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        DcmRLEDecoderRegistration::registerCodecs();
        DJDecoderRegistration::registerCodecs();
        /* so leak checkers see a clean exit */
        atexit([] {
            DJDecoderRegistration::cleanup();
            DcmRLEDecoderRegistration::cleanup();
        });
    });
}

struct XferName {
    const char *uid, *name;
};
const XferName xfer_names[] = {
    {UID_LittleEndianImplicitTransferSyntax, "Implicit VR Little Endian"},
    {UID_LittleEndianExplicitTransferSyntax, "Explicit VR Little Endian"},
    {UID_BigEndianExplicitTransferSyntax, "Explicit VR Big Endian"},
    {UID_DeflatedExplicitVRLittleEndianTransferSyntax, "Deflated Explicit VR Little Endian"},
    {UID_RLELosslessTransferSyntax, "RLE Lossless"},
    {UID_JPEGProcess1TransferSyntax, "JPEG Baseline"},
    {UID_JPEGProcess2_4TransferSyntax, "JPEG Extended"},
    {UID_JPEGProcess14TransferSyntax, "JPEG Lossless"},
    {UID_JPEGProcess14SV1TransferSyntax, "JPEG Lossless SV1"},
    {UID_JPEGLSLosslessTransferSyntax, "JPEG-LS Lossless"},
    {UID_JPEGLSLossyTransferSyntax, "JPEG-LS Near-Lossless"},
    {UID_JPEG2000LosslessOnlyTransferSyntax, "JPEG 2000 Lossless"},
    {UID_JPEG2000TransferSyntax, "JPEG 2000"},
    {UID_MPEG2MainProfileAtMainLevelTransferSyntax, "MPEG-2"},
    {UID_MPEG4HighProfileLevel4_1TransferSyntax, "MPEG-4 AVC/H.264"},
};

} // namespace

extern "C" const char *media_dicom_transfer_syntax_name(const char *uid)
{
    for (const XferName &x : xfer_names)
        if (uid && !strcmp(uid, x.uid))
            return x.name;
    return uid ? uid : "(none)";
}

struct media_dicom {
    ~media_dicom()
    {
        if (memory_fd >= 0)
            close(memory_fd);
    }
    int memory_fd = -1; /* media_dicom_open_memory: the anonymous file DCMTK reads lazily */
    DcmFileFormat file;
    E_TransferSyntax xfer = EXS_Unknown;
    media_dicom_info info{};
    std::vector<double> durations_ms; /* per frame, only for a Frame Time Vector */
    std::string name;
};

namespace {

void copy_string(DcmItem *item, const DcmTagKey &key, char *dst, size_t size)
{
    OFString value;
    dst[0] = 0;
    if (item->findAndGetOFString(key, value).good())
        snprintf(dst, size, "%s", value.c_str());
}

bool positive_finite(double v)
{
    return v > 0 && v < 1e9; /* also false for NaN */
}

/* Frame rate, in the order of precedence of PS3.3 C.7.6.5 (Cine module): the attribute the
 * Frame Increment Pointer names, then Frame Time, Frame Time Vector, Cine Rate, and the
 * Recommended Display Frame Rate. Unusable values fall through to the next source. */
void read_timing(media_dicom *d, DcmDataset *ds)
{
    media_dicom_info &in = d->info;
    Float64 v = 0;
    bool use_vector = false, use_time = false;
    DcmElement *fip = nullptr;

    if (ds->findAndGetElement(DCM_FrameIncrementPointer, fip).good() && fip) {
        DcmAttributeTag *at = OFdynamic_cast(DcmAttributeTag *, fip);
        for (unsigned long i = 0; at && i < at->getVM(); i++) {
            DcmTagKey key;
            if (at->getTagVal(key, i).bad())
                break;
            if (key == DCM_FrameTimeVector)
                use_vector = true;
            if (key == DCM_FrameTime)
                use_time = true;
        }
    }
    if (!use_vector && !use_time)
        use_time = use_vector = true; /* no pointer: take whichever is present */
    if (use_time && ds->findAndGetFloat64(DCM_FrameTime, v).good() && positive_finite(v)) {
        in.frame_time_ms = v;
        in.timing = MEDIA_DICOM_TIMING_FRAME_TIME;
        return;
    }
    DcmElement *vec = nullptr;
    if (use_vector && in.frames > 1 && ds->findAndGetElement(DCM_FrameTimeVector, vec).good() &&
        vec && vec->getVM() == in.frames) {
        /* Entry i is the time from frame i-1 to frame i (entry 0 is 0): frame i is shown for
         * entry i+1; the last frame gets the mean of the others. */
        std::vector<double> inc(in.frames);
        bool ok = true;
        for (unsigned i = 0; ok && i < in.frames; i++) {
            Float64 t = 0;
            ok = vec->getFloat64(t, i).good() && (i == 0 || positive_finite(t));
            inc[i] = t;
        }
        if (ok) {
            double sum = 0;
            d->durations_ms.resize(in.frames);
            for (unsigned i = 0; i + 1 < in.frames; i++) {
                d->durations_ms[i] = inc[i + 1];
                sum += inc[i + 1];
            }
            in.frame_time_ms = sum / (in.frames - 1);
            d->durations_ms[in.frames - 1] = in.frame_time_ms;
            in.timing = MEDIA_DICOM_TIMING_FRAME_TIME_VECTOR;
            return;
        }
    }
    Sint32 rate = 0;
    if (ds->findAndGetSint32(DCM_CineRate, rate).good() && rate > 0 && rate <= 10000) {
        in.frame_time_ms = 1000.0 / rate;
        in.timing = MEDIA_DICOM_TIMING_CINE_RATE;
        return;
    }
    if (ds->findAndGetSint32(DCM_RecommendedDisplayFrameRate, rate).good() && rate > 0 &&
        rate <= 10000) {
        in.frame_time_ms = 1000.0 / rate;
        in.timing = MEDIA_DICOM_TIMING_DISPLAY_RATE;
        return;
    }
    in.frame_time_ms = MEDIA_DICOM_DEFAULT_FRAME_TIME_MS;
    in.timing = MEDIA_DICOM_TIMING_DEFAULT;
}

/* The image region: of the Sequence of Ultrasound Regions, the largest 2D (spatial format 1)
 * region, else the largest region; clipped to the frame. Regions are where the scanner drew
 * the B-mode sector, which is what the classifier should see. */
void read_region(media_dicom *d, DcmDataset *ds)
{
    media_dicom_info &in = d->info;
    long long best_area = -1;
    bool best_2d = false;
    for (unsigned long i = 0;; i++) {
        DcmItem *item = nullptr;
        if (ds->findAndGetSequenceItem(DCM_SequenceOfUltrasoundRegions, item, (signed long)i)
                .bad() || !item)
            break;
        Uint32 x0, y0, x1, y1;
        Uint16 format = 0;
        if (item->findAndGetUint32(DCM_RegionLocationMinX0, x0).bad() ||
            item->findAndGetUint32(DCM_RegionLocationMinY0, y0).bad() ||
            item->findAndGetUint32(DCM_RegionLocationMaxX1, x1).bad() ||
            item->findAndGetUint32(DCM_RegionLocationMaxY1, y1).bad())
            continue;
        item->findAndGetUint16(DCM_RegionSpatialFormat, format);
        if (x0 >= (Uint32)in.width || y0 >= (Uint32)in.height || x1 < x0 || y1 < y0)
            continue;
        if (x1 >= (Uint32)in.width)
            x1 = (Uint32)in.width - 1;
        if (y1 >= (Uint32)in.height)
            y1 = (Uint32)in.height - 1;
        bool is_2d = format == 1;
        long long area = (long long)(x1 - x0 + 1) * (y1 - y0 + 1);
        if ((is_2d && !best_2d) || (is_2d == best_2d && area > best_area)) {
            best_2d = is_2d;
            best_area = area;
            in.has_region = 1;
            in.region_x = (int)x0;
            in.region_y = (int)y0;
            in.region_width = (int)(x1 - x0 + 1);
            in.region_height = (int)(y1 - y0 + 1);
        }
    }
}

/* DCMTK 3.6.7's RLE decoder trusts the segment offsets of each fragment's header and reads
 * out of bounds on hostile ones (found by fuzz_dicom). PS3.5 G.3: one fragment per frame, a
 * 64-byte header of little-endian uint32: the segment count (one per byte of a sample, so
 * samples per pixel x bytes per sample), then the segment offsets, the first 64, increasing,
 * inside the fragment. */
int check_rle(DcmPixelSequence *seq, unsigned frames, unsigned segments, const char *name,
              ev_error *err)
{
    unsigned long fragments = seq->card() - 1; /* item 0 is the Basic Offset Table */
    if (fragments < frames)
        return fail(err, EV_ERR_FORMAT, "%s: RLE Pixel Data has %lu fragment(s) for %u frame(s)",
                    name, fragments, frames);
    for (unsigned long f = 1; f <= fragments; f++) {
        DcmPixelItem *item = nullptr;
        Uint8 *bytes = nullptr;
        if (seq->getItem(item, f).bad() || !item)
            return fail(err, EV_ERR_FORMAT, "%s: RLE fragment %lu is missing", name, f);
        Uint32 length = item->getLength();
        if (length < 64 || item->getUint8Array(bytes).bad() || !bytes)
            return fail(err, EV_ERR_FORMAT, "%s: RLE fragment %lu is shorter than its header",
                        name, f);
        auto u32 = [&](unsigned i) {
            const Uint8 *b = bytes + 4 * i;
            return (Uint32)b[0] | (Uint32)b[1] << 8 | (Uint32)b[2] << 16 | (Uint32)b[3] << 24;
        };
        Uint32 count = u32(0);
        if (count != segments)
            return fail(err, EV_ERR_FORMAT, "%s: RLE fragment %lu has %u segment(s), the image "
                        "needs %u", name, f, (unsigned)count, segments);
        for (unsigned i = 0; i < count; i++) {
            Uint32 offset = u32(1 + i);
            if ((i == 0 && offset != 64) || (i > 0 && offset < u32(i)) || offset > length)
                return fail(err, EV_ERR_FORMAT, "%s: RLE fragment %lu: segment %u offset %u is "
                            "outside the fragment or out of order", name, f, i, (unsigned)offset);
        }
    }
    return EV_OK;
}

/* DCMTK 3.6.7's JPEG decoder first walks a frame's markers for the bit depth
 * (DJCodecDecoder::scanJpegDataForBitDepth) and never steps past a TEM marker (FF01): a
 * fragment whose walk reaches one hangs the reader for good (found by fuzz_dicom). Walk each
 * fragment the same way, up to the frame header it looks for, and refuse such a file. */
int check_jpeg(DcmPixelSequence *seq, const char *name, ev_error *err)
{
    for (unsigned long f = 1; f < seq->card(); f++) { /* item 0 is the Basic Offset Table */
        DcmPixelItem *item = nullptr;
        Uint8 *bytes = nullptr;
        if (seq->getItem(item, f).bad() || !item)
            return fail(err, EV_ERR_FORMAT, "%s: JPEG fragment %lu is missing", name, f);
        Uint32 length = item->getLength();
        if (length == 0 || item->getUint8Array(bytes).bad() || !bytes)
            continue; /* DCMTK's walk finds nothing in an empty fragment */
        for (unsigned long long at = 0; at + 4 < length;) {
            unsigned marker = (unsigned)bytes[at] << 8 | bytes[at + 1];
            unsigned low = marker & 0xFF;
            if (marker == 0xFF01)
                return fail(err, EV_ERR_FORMAT, "%s: JPEG fragment %lu: a TEM marker (FF01) at "
                            "byte %u, which this DICOM decoder cannot read past", name, f,
                            (unsigned)at);
            if (marker >> 8 != 0xFF)
                break; /* not a marker: DCMTK stops there */
            if (low >= 0xC0 && low <= 0xCF && low != 0xC4 && low != 0xC8 && low != 0xCC)
                break; /* a frame header (SOFn): the walk ends */
            if (low == 0xFF)
                at += 1; /* a fill byte */
            else if ((low >= 0xD0 && low <= 0xD9) || (low > 0x02 && low <= 0xBF))
                at += 2; /* RSTn, SOI, EOI and reserved markers carry no length */
            else if (low == 0xC4 || low == 0xCC || low >= 0xDA)
                at += 2 + ((unsigned)bytes[at + 2] << 8 | bytes[at + 3]);
            else
                break; /* JPG (C8), 00 and 02: DCMTK stops on them */
        }
    }
    return EV_OK;
}

int validate(media_dicom *d, ev_error *err)
{
    const char *name = d->name.c_str();
    DcmDataset *ds = d->file.getDataset();
    media_dicom_info &in = d->info;

    d->xfer = ds->getOriginalXfer();
    DcmXfer xfer(d->xfer);
    snprintf(in.transfer_syntax_uid, sizeof in.transfer_syntax_uid, "%s", xfer.getXferID());
    copy_string(ds, DCM_SOPClassUID, in.sop_class_uid, sizeof in.sop_class_uid);
    copy_string(ds, DCM_PhotometricInterpretation, in.photometric, sizeof in.photometric);
    copy_string(ds, DCM_SeriesDescription, in.series_description, sizeof in.series_description);
    copy_string(ds, DCM_PatientID, in.patient_id, sizeof in.patient_id);
    copy_string(ds, DCM_StudyInstanceUID, in.study_instance_uid, sizeof in.study_instance_uid);
    copy_string(ds, DCM_SOPInstanceUID, in.sop_instance_uid, sizeof in.sop_instance_uid);

    DcmElement *pixels = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, pixels).bad() || !pixels)
        return fail(err, EV_ERR_FORMAT, "%s: no Pixel Data (SOP class %s)", name,
                    in.sop_class_uid[0] ? in.sop_class_uid : "missing");
    if (xfer.isEncapsulated() && !DcmCodecList::canChangeCoding(d->xfer, EXS_LittleEndianExplicit))
        return fail(err, EV_ERR_UNSUPPORTED, "%s: unsupported transfer syntax %s (%s)", name,
                    xfer.getXferID(), media_dicom_transfer_syntax_name(xfer.getXferID()));

    Uint16 rows = 0, cols = 0, spp = 0, bits_allocated = 0, bits_stored = 0;
    if (ds->findAndGetUint16(DCM_Rows, rows).bad() || ds->findAndGetUint16(DCM_Columns, cols).bad())
        return fail(err, EV_ERR_FORMAT, "%s: missing Rows or Columns", name);
    if (rows == 0 || cols == 0 || rows > MEDIA_MAX_DIMENSION || cols > MEDIA_MAX_DIMENSION)
        return fail(err, EV_ERR_FORMAT, "%s: image size %ux%u is out of range (1..%d)", name,
                    (unsigned)cols, (unsigned)rows, MEDIA_MAX_DIMENSION);
    if (ds->findAndGetUint16(DCM_SamplesPerPixel, spp).bad() || (spp != 1 && spp != 3))
        return fail(err, EV_ERR_FORMAT, "%s: Samples per Pixel must be 1 or 3", name);
    if (ds->findAndGetUint16(DCM_BitsAllocated, bits_allocated).bad() ||
        (bits_allocated != 1 && bits_allocated % 8) || bits_allocated > 32)
        return fail(err, EV_ERR_FORMAT, "%s: Bits Allocated must be 1, 8, 16, 24 or 32", name);
    if (ds->findAndGetUint16(DCM_BitsStored, bits_stored).good() && bits_stored > bits_allocated)
        return fail(err, EV_ERR_FORMAT, "%s: Bits Stored %u exceeds Bits Allocated %u", name,
                    (unsigned)bits_stored, (unsigned)bits_allocated);
    Sint32 frames = 1;
    OFString frames_text;
    if (ds->findAndGetOFString(DCM_NumberOfFrames, frames_text).good() && !frames_text.empty() &&
        (ds->findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1 ||
         frames > MEDIA_DICOM_MAX_FRAMES))
        return fail(err, EV_ERR_FORMAT, "%s: Number of Frames '%s' is out of range (1..%d)", name,
                    frames_text.c_str(), MEDIA_DICOM_MAX_FRAMES);
    in.width = cols;
    in.height = rows;
    in.frames = (unsigned)frames;
    in.channels = spp == 3 ? 3 : 1;

    /* A native Pixel Data shorter than the header promises is a truncated or lying file;
     * DicomImage would pad it with zeros and carry on. */
    if (!xfer.isEncapsulated()) {
        /* 4:2:2 native data carries two samples per pixel (PS3.3 C.7.6.3.1.2). */
        unsigned samples = spp;
        if (spp == 3 && !strncmp(in.photometric, "YBR_", 4) && strstr(in.photometric, "_422"))
            samples = 2;
        unsigned long long need_bits = (unsigned long long)rows * cols * samples * bits_allocated *
                                       (unsigned long long)frames;
        unsigned long long need = (need_bits + 7) / 8;
        if ((unsigned long long)pixels->getLength() < need)
            return fail(err, EV_ERR_FORMAT,
                        "%s: Pixel Data has %lu bytes, %ux%u x %d frame(s) need %llu", name,
                        (unsigned long)pixels->getLength(), (unsigned)cols, (unsigned)rows,
                        (int)frames, need);
    } else {
        DcmPixelData *pd = OFdynamic_cast(DcmPixelData *, pixels);
        DcmPixelSequence *seq = nullptr;
        const DcmRepresentationParameter *param = nullptr;
        if (!pd || pd->getEncapsulatedRepresentation(d->xfer, param, seq).bad() || !seq ||
            seq->card() < 2)
            return fail(err, EV_ERR_FORMAT, "%s: compressed Pixel Data has no fragments", name);
        int rc = EV_OK;
        if (d->xfer == EXS_RLELossless)
            rc = check_rle(seq, (unsigned)frames, spp * ((bits_allocated + 7) / 8), name, err);
        else if (d->xfer >= EXS_JPEGProcess1 && d->xfer <= EXS_JPEGProcess14SV1)
            rc = check_jpeg(seq, name, err);
        if (rc != EV_OK)
            return rc;
    }
    read_timing(d, ds);
    read_region(d, ds);

    /* Render frame 0 once: photometric interpretations and depths DCMTK cannot display fail
     * here, at open, not in the middle of a stream. */
    DicomImage probe(&d->file, d->xfer, CIF_UsePartialAccessToPixelData, 0, 1);
    if (probe.getStatus() != EIS_Normal)
        return fail(err, EV_ERR_FORMAT, "%s: cannot decode the image: %s", name,
                    DicomImage::getString(probe.getStatus()));
    in.channels = probe.isMonochrome() ? 1 : 3;
    if ((int)probe.getWidth() != in.width || (int)probe.getHeight() != in.height)
        return fail(err, EV_ERR_FORMAT, "%s: decoded size %lux%lu differs from the header", name,
                    probe.getWidth(), probe.getHeight());
    return EV_OK;
}

/* DCMTK checks data set element lengths against the bytes left in a file, but not those of the
 * file meta group (0002,xxxx): a 200-byte file declaring a 2.7 GB meta element makes it
 * allocate that much (found by fuzz_dicom). Walk the meta group first; head holds the file's
 * first bytes (up to the whole file), file_size its length. */
int check_meta_lengths(const uint8_t *head, size_t head_len, unsigned long long file_size,
                       const char *name, ev_error *err)
{
    if (head_len < 132 || memcmp(head + 128, "DICM", 4) != 0)
        return EV_OK; /* no Part 10 header: DCMTK reads a bare data set, with its checks */
    size_t pos = 132;
    while (pos + 8 <= head_len && head[pos] == 0x02 && head[pos + 1] == 0x00) {
        unsigned elem = head[pos + 2] | head[pos + 3] << 8;
        unsigned long long length, header;
        char vr0 = (char)head[pos + 4], vr1 = (char)head[pos + 5];
        bool explicit_vr = vr0 >= 'A' && vr0 <= 'Z' && vr1 >= 'A' && vr1 <= 'Z';
        /* VRs with a 4-byte length in explicit VR (PS3.5 7.1.2) */
        static const char long_vrs[][3] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                           "SV", "UC", "UN", "UR", "UT", "UV"};
        bool long_form = false;
        for (const char *v : long_vrs)
            long_form = long_form || (explicit_vr && v[0] == vr0 && v[1] == vr1);
        if (!explicit_vr || long_form) {
            size_t at = explicit_vr ? pos + 8 : pos + 4;
            if (at + 4 > head_len)
                break;
            length = (unsigned long long)head[at] | (unsigned long long)head[at + 1] << 8 |
                     (unsigned long long)head[at + 2] << 16 | (unsigned long long)head[at + 3] << 24;
            header = explicit_vr ? 12 : 8;
        } else {
            length = head[pos + 6] | head[pos + 7] << 8;
            header = 8;
        }
        if (length == 0xFFFFFFFFull || pos + header + length > file_size)
            return fail(err, EV_ERR_FORMAT,
                        "%s: not a readable DICOM file: file meta element (0002,%04X) declares "
                        "%llu bytes, past the end of the file", name, elem, length);
        pos += (size_t)(header + length);
    }
    return EV_OK;
}

int check_meta_file(const char *path, const char *name, ev_error *err)
{
    uint8_t head[65536];
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, EV_ERR_IO, "%s: %s", name, strerror(errno));
    size_t n = fread(head, 1, sizeof head, f);
    int seek_ok = fseeko(f, 0, SEEK_END) == 0;
    off_t size = seek_ok ? ftello(f) : -1;
    fclose(f);
    if (size < 0)
        return fail(err, EV_ERR_IO, "%s: cannot tell the file size", name);
    return check_meta_lengths(head, n, (unsigned long long)size, name, err);
}

int finish_open(media_dicom *d, OFCondition cond, media_dicom **out, ev_error *err)
{
    if (cond.bad()) {
        int rc = fail(err, EV_ERR_FORMAT, "%s: not a readable DICOM file: %s", d->name.c_str(),
                      cond.text());
        delete d;
        return rc;
    }
    int rc = validate(d, err);
    if (rc != EV_OK) {
        delete d;
        return rc;
    }
    *out = d;
    return EV_OK;
}

} // namespace

extern "C" int media_dicom_open(const char *path, media_dicom **out, ev_error *err)
{
    if (!path || !out)
        return fail(err, EV_ERR_INVALID, "media_dicom_open: NULL argument");
    *out = nullptr;
    dicom_global_init();
    media_dicom *d = new (std::nothrow) media_dicom;
    if (!d)
        return fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
    try {
        d->name = path;
        int rc = check_meta_file(path, path, err);
        if (rc != EV_OK) {
            delete d;
            return rc;
        }
        OFCondition cond = d->file.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                            ERM_autoDetect);
        return finish_open(d, cond, out, err);
    } catch (const std::exception &e) {
        delete d;
        return fail(err, EV_ERR_NOMEM, "%s: %s", path, e.what());
    }
}

extern "C" int media_dicom_open_memory(const uint8_t *bytes, size_t size, const char *name,
                                       media_dicom **out, ev_error *err)
{
    if (!bytes || !out)
        return fail(err, EV_ERR_INVALID, "media_dicom_open_memory: NULL argument");
    *out = nullptr;
    name = name ? name : "(memory)";
    /* Through an anonymous file, not DcmInputBufferStream: on a file DCMTK checks the lengths
     * of large values against the bytes that remain, while from a buffer it allocates whatever
     * length a hostile header declares (up to 4 GB) before reading. */
    int fd = memfd_create("echoview-dicom", MFD_CLOEXEC);
    if (fd < 0)
        return fail(err, EV_ERR_IO, "%s: memfd_create: %s", name, strerror(errno));
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, bytes + done, size - done);
        if (n <= 0) {
            int rc = fail(err, EV_ERR_IO, "%s: %s", name, strerror(errno));
            close(fd);
            return rc;
        }
        done += (size_t)n;
    }
    int rc = check_meta_lengths(bytes, size, size, name, err);
    if (rc != EV_OK) {
        close(fd);
        return rc;
    }
    dicom_global_init();
    media_dicom *d = new (std::nothrow) media_dicom;
    if (!d) {
        close(fd);
        return fail(err, EV_ERR_NOMEM, "%s: out of memory", name);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    try {
        d->name = name;
        /* Values over DCM_MaxReadLength are loaded when used, from the path, so the
         * descriptor lives as long as d. Loading them all now would also skip DCMTK's check of
         * a deferred value's length against the bytes left (found by fuzz_dicom). */
        d->memory_fd = fd;
        OFCondition cond = d->file.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                            ERM_autoDetect);
        return finish_open(d, cond, out, err);
    } catch (const std::exception &e) {
        delete d;
        return fail(err, EV_ERR_NOMEM, "%s: %s", name, e.what());
    }
}

extern "C" const media_dicom_info *media_dicom_get_info(const media_dicom *dicom)
{
    return dicom ? &dicom->info : nullptr;
}

extern "C" double media_dicom_frame_duration_ms(const media_dicom *dicom, unsigned index)
{
    if (!dicom)
        return MEDIA_DICOM_DEFAULT_FRAME_TIME_MS;
    if (index < dicom->durations_ms.size() && positive_finite(dicom->durations_ms[index]))
        return dicom->durations_ms[index];
    return dicom->info.frame_time_ms;
}

extern "C" int media_dicom_read_frame(media_dicom *dicom, unsigned index, uint8_t *dst,
                                      size_t stride, ev_error *err)
{
    if (!dicom || !dst)
        return fail(err, EV_ERR_INVALID, "media_dicom_read_frame: NULL argument");
    const media_dicom_info &in = dicom->info;
    const char *name = dicom->name.c_str();
    if (index >= in.frames)
        return fail(err, EV_ERR_INVALID, "%s: frame %u of %u does not exist", name, index,
                    in.frames);
    size_t row = (size_t)in.width * in.channels;
    if (stride < row)
        return fail(err, EV_ERR_INVALID, "%s: stride %zu is below a row of %zu bytes", name,
                    stride, row);
    try {
        DicomImage image(&dicom->file, dicom->xfer, CIF_UsePartialAccessToPixelData, index, 1);
        if (image.getStatus() != EIS_Normal)
            return fail(err, EV_ERR_FORMAT, "%s: frame %u: %s", name, index,
                        DicomImage::getString(image.getStatus()));
        if ((int)image.getWidth() != in.width || (int)image.getHeight() != in.height ||
            (image.isMonochrome() ? 1 : 3) != in.channels)
            return fail(err, EV_ERR_FORMAT, "%s: frame %u differs in size or colour from frame 0",
                        name, index);
        const uint8_t *src = (const uint8_t *)image.getOutputData(8, 0, 0);
        if (!src || image.getOutputDataSize(8) < row * in.height)
            return fail(err, EV_ERR_FORMAT, "%s: frame %u could not be rendered", name, index);
        for (int y = 0; y < in.height; y++)
            memcpy(dst + (size_t)y * stride, src + (size_t)y * row, row);
        return EV_OK;
    } catch (const std::exception &e) {
        return fail(err, EV_ERR_NOMEM, "%s: frame %u: %s", name, index, e.what());
    }
}

extern "C" void media_dicom_close(media_dicom *dicom)
{
    delete dicom;
}

/* ---- writing ---------------------------------------------------------------------------- */

extern "C" int media_dicom_write_cine(const char *path, const media_dicom_cine *c, ev_error *err)
{
    if (!path || !c || !c->pixels)
        return fail(err, EV_ERR_INVALID, "media_dicom_write_cine: NULL argument");
    if (c->width < 1 || c->height < 1 || c->width > 65535 || c->height > 65535 || c->frames < 1 ||
        c->frames > MEDIA_DICOM_MAX_FRAMES || !positive_finite(c->frame_time_ms))
        return fail(err, EV_ERR_INVALID, "%s: bad cine geometry or frame time", path);
    if (c->region_x < 0 || c->region_y < 0 || c->region_width < 1 || c->region_height < 1 ||
        c->region_x + c->region_width > c->width || c->region_y + c->region_height > c->height)
        return fail(err, EV_ERR_INVALID, "%s: region is outside the frame", path);
    unsigned long long bytes = (unsigned long long)c->width * c->height * c->frames;
    if (bytes > 0xFFFFFFF0ull)
        return fail(err, EV_ERR_INVALID, "%s: %llu bytes of pixels do not fit one element", path,
                    bytes);
    dicom_global_init();
    try {
        DcmFileFormat file;
        DcmDataset *ds = file.getDataset();
        char uid[100], study[100], series[100], text[64];
        OFCondition s = EC_Normal;
        dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
        dcmGenerateUniqueIdentifier(study, SITE_STUDY_UID_ROOT);
        dcmGenerateUniqueIdentifier(series, SITE_SERIES_UID_ROOT);
        OFString date, time;
        DcmDate::getCurrentDate(date);
        DcmTime::getCurrentTime(time);
        auto put = [&](const DcmTagKey &k, const char *v) {
            if (s.good())
                s = ds->putAndInsertString(k, v);
        };
        auto put16 = [&](const DcmTagKey &k, Uint16 v) {
            if (s.good())
                s = ds->putAndInsertUint16(k, v);
        };
        put(DCM_SpecificCharacterSet, "ISO_IR 100");
        put(DCM_ImageType, "DERIVED\\SECONDARY");
        put(DCM_SOPClassUID, UID_UltrasoundMultiframeImageStorage);
        put(DCM_SOPInstanceUID, uid);
        put(DCM_StudyDate, date.c_str());
        put(DCM_ContentDate, date.c_str());
        put(DCM_StudyTime, time.c_str());
        put(DCM_ContentTime, time.c_str());
        put(DCM_AccessionNumber, "");
        put(DCM_Modality, "US");
        put(DCM_Manufacturer, "echoview phantom");
        put(DCM_ReferringPhysicianName, "");
        put(DCM_StationName, c->station_name ? c->station_name : "ECHOVIEW");
        put(DCM_SeriesDescription, c->series_description ? c->series_description : "");
        put(DCM_PatientName, "Phantom^Echo");
        put(DCM_PatientID, c->patient_id ? c->patient_id : "PHANTOM");
        put(DCM_PatientBirthDate, "");
        put(DCM_PatientSex, "O");
        put(DCM_StudyInstanceUID, study);
        put(DCM_SeriesInstanceUID, series);
        put(DCM_StudyID, "1");
        put(DCM_SeriesNumber, "1");
        put(DCM_InstanceNumber, "1");
        put(DCM_PatientOrientation, "");
        put(DCM_BurnedInAnnotation, "NO");
        put(DCM_LossyImageCompression, "00");
        snprintf(text, sizeof text, "%u", c->frames);
        put(DCM_NumberOfFrames, text);
        if (s.good())
            s = ds->putAndInsertTagKey(DCM_FrameIncrementPointer, DCM_FrameTime);
        snprintf(text, sizeof text, "%.6g", c->frame_time_ms);
        put(DCM_FrameTime, text);
        snprintf(text, sizeof text, "%d", (int)(1000.0 / c->frame_time_ms + 0.5));
        put(DCM_CineRate, text);
        put(DCM_RecommendedDisplayFrameRate, text);
        put16(DCM_SamplesPerPixel, 1);
        put(DCM_PhotometricInterpretation, "MONOCHROME2");
        put16(DCM_Rows, (Uint16)c->height);
        put16(DCM_Columns, (Uint16)c->width);
        put16(DCM_BitsAllocated, 8);
        put16(DCM_BitsStored, 8);
        put16(DCM_HighBit, 7);
        put16(DCM_PixelRepresentation, 0);
        if (s.good()) {
            DcmItem *region = nullptr;
            s = ds->findOrCreateSequenceItem(DCM_SequenceOfUltrasoundRegions, region, 0);
            if (s.good()) {
                region->putAndInsertUint16(DCM_RegionSpatialFormat, 1);  /* 2D */
                region->putAndInsertUint16(DCM_RegionDataType, 1);       /* tissue */
                region->putAndInsertUint32(DCM_RegionFlags, 0);
                region->putAndInsertUint32(DCM_RegionLocationMinX0, (Uint32)c->region_x);
                region->putAndInsertUint32(DCM_RegionLocationMinY0, (Uint32)c->region_y);
                region->putAndInsertUint32(DCM_RegionLocationMaxX1,
                                           (Uint32)(c->region_x + c->region_width - 1));
                region->putAndInsertUint32(DCM_RegionLocationMaxY1,
                                           (Uint32)(c->region_y + c->region_height - 1));
                region->putAndInsertUint16(DCM_PhysicalUnitsXDirection, 3); /* cm */
                region->putAndInsertUint16(DCM_PhysicalUnitsYDirection, 3);
                region->putAndInsertFloat64(DCM_PhysicalDeltaX, 0.03);
                region->putAndInsertFloat64(DCM_PhysicalDeltaY, 0.03);
            }
        }
        if (s.good())
            s = ds->putAndInsertUint8Array(DCM_PixelData, c->pixels, (unsigned long)bytes);
        if (s.good())
            s = file.saveFile(path, EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL,
                              EPD_noChange, 0, 0, EWM_fileformat);
        if (s.bad())
            return fail(err, EV_ERR_IO, "%s: %s", path, s.text());
        return EV_OK;
    } catch (const std::exception &e) {
        return fail(err, EV_ERR_NOMEM, "%s: %s", path, e.what());
    }
}

/* ---- C-STORE SCP ------------------------------------------------------------------------ */

namespace {

const char *const scp_classes[] = {UID_UltrasoundMultiframeImageStorage, UID_UltrasoundImageStorage};
const char *const scp_transfer_syntaxes[] = {
    UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
    UID_BigEndianExplicitTransferSyntax,    UID_RLELosslessTransferSyntax,
    UID_JPEGProcess1TransferSyntax,         UID_JPEGProcess2_4TransferSyntax,
    UID_JPEGProcess14TransferSyntax,        UID_JPEGProcess14SV1TransferSyntax,
};

bool listed(const char *uid, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(uid, list[i]))
            return true;
    return false;
}

class StoreProvider : public DcmThreadSCP {
  public:
    StoreProvider(const media_dicom_scp_config &c, std::mutex &m) : config(c), count_lock(m) {}

    void log(bool is_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)))
    {
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (config.log)
            config.log(config.user, is_error, line);
    }

  protected:
    OFCondition handleIncomingCommand(T_DIMSE_Message *msg,
                                      const DcmPresentationContextInfo &pres) override
    {
        if (msg->CommandField != DIMSE_C_STORE_RQ)
            return DcmSCP::handleIncomingCommand(msg, pres);
        T_DIMSE_C_StoreRQ &req = msg->msg.CStoreRQ;
        std::string peer = getPeerAETitle().c_str();
        unsigned long long held = 0;
        if (config.spool_max_bytes &&
            (held = tree_bytes(config.spool_dir)) > config.spool_max_bytes) {
            /* Read the data set (the protocol needs it consumed) into memory, not the full
             * spool, drop it and say why: nothing already acknowledged is touched. */
            DcmDataset *ds = nullptr;
            OFCondition cond = receiveSTORERequest(req, pres.presentationContextID, ds);
            delete ds;
            if (cond.bad()) {
                log(true, "C-STORE from %s: receiving %s failed: %s", peer.c_str(),
                    req.AffectedSOPInstanceUID, cond.text());
                return cond;
            }
            unsigned long n = count(&media_dicom_scp_counters::spool_refused);
            log(true, "C-STORE from %s: refused %s with 0xA700 (out of resources): the spool "
                "holds %llu bytes, more than spool-max-mb (%llu bytes); %lu refused so far",
                peer.c_str(), req.AffectedSOPInstanceUID, held, config.spool_max_bytes, n);
            return sendSTOREResponse(pres.presentationContextID, req,
                                     STATUS_STORE_Refused_OutOfResources);
        }
        char path[4096];
        static std::atomic<unsigned> counter{0};
        snprintf(path, sizeof path, "%s/store-%ld-%u.dcm", config.spool_dir, (long)getpid(),
                 ++counter);
        OFCondition cond = receiveSTORERequest(req, pres.presentationContextID, OFString(path));
        if (cond.bad()) {
            log(true, "C-STORE from %s: receiving %s failed: %s", peer.c_str(),
                req.AffectedSOPInstanceUID, cond.text());
            unlink(path);
            return cond;
        }
        media_dicom *d = nullptr;
        ev_error e = {};
        Uint16 status = STATUS_Success;
        if (media_dicom_open(path, &d, &e) != EV_OK) {
            log(true, "C-STORE from %s: rejected %s: %s", peer.c_str(), req.AffectedSOPInstanceUID,
                e.message);
            status = STATUS_STORE_Error_CannotUnderstand;
        }
        cond = sendSTOREResponse(pres.presentationContextID, req, status);
        if (!d) {
            unlink(path);
            return cond;
        }
        log(false, "C-STORE from %s: %s, %u frame(s) %dx%d, %s", peer.c_str(),
            req.AffectedSOPInstanceUID, d->info.frames, d->info.width, d->info.height,
            media_dicom_transfer_syntax_name(d->info.transfer_syntax_uid));
        media_dicom_info info = d->info;
        media_dicom_close(d);
        count(&media_dicom_scp_counters::stored);
        if (config.on_file)
            config.on_file(config.user, path, peer.c_str(), &info);
        else
            unlink(path);
        return cond;
    }

    void notifyAssociationRequest(const T_ASC_Parameters &params,
                                  DcmSCPActionType &action) override
    {
        DcmSCP::notifyAssociationRequest(params, action);
        log(false, "association request from %s (%s)", params.DULparams.callingAPTitle,
            params.DULparams.callingPresentationAddress);
        /* Say which proposals we turn down and why: the scanner's log only says "no
         * presentation context", the site engineer reads ours. */
        T_ASC_Parameters *p = const_cast<T_ASC_Parameters *>(&params);
        refused_xfers.clear();
        const char *calling = params.DULparams.callingAPTitle;
        const size_t n_xfers = sizeof scp_transfer_syntaxes / sizeof *scp_transfer_syntaxes;
        bool acceptable = false;
        std::vector<std::string> refused_classes;
        for (int i = 0; i < ASC_countPresentationContexts(p); i++) {
            T_ASC_PresentationContext pc;
            if (ASC_getPresentationContext(p, i, &pc).bad() ||
                !strcmp(pc.abstractSyntax, UID_VerificationSOPClass))
                continue;
            if (!listed(pc.abstractSyntax, scp_classes, 2)) {
                refused_classes.push_back(pc.abstractSyntax);
                continue;
            }
            bool any = false;
            for (int t = 0; t < pc.transferSyntaxCount; t++) {
                const char *uid = pc.proposedTransferSyntaxes[t];
                bool ok = listed(uid, scp_transfer_syntaxes, n_xfers);
                any = any || ok;
                std::string named = std::string(uid) + " (" +
                                    media_dicom_transfer_syntax_name(uid) + ")";
                if (!ok && refused_xfers.find(named) == std::string::npos)
                    refused_xfers += (refused_xfers.empty() ? "" : ", ") + named;
            }
            acceptable = acceptable || any;
            if (!any && pc.transferSyntaxCount > 0)
                log(true, "refusing transfer syntax %s (%s) from %s: not decodable here",
                    pc.proposedTransferSyntaxes[0],
                    media_dicom_transfer_syntax_name(pc.proposedTransferSyntaxes[0]), calling);
        }
        /* Storage SCUs often propose every class they know: only an association with nothing
         * we take is worth a line per class. */
        if (!acceptable)
            for (size_t i = 0; i < refused_classes.size(); i++)
                if (std::find(refused_classes.begin(), refused_classes.begin() + i,
                              refused_classes[i]) == refused_classes.begin() + i)
                    log(true, "refusing SOP class %s from %s: only US Multi-frame and US Image "
                        "Storage are accepted", refused_classes[i].c_str(), calling);
    }
    OFBool checkCalledAETitleAccepted(const OFString &called) override
    {
        if (called == getConfig().getAETitle())
            return OFTrue;
        log(true, "association refused: called AE title '%s' is not ours ('%s')", called.c_str(),
            getConfig().getAETitle().c_str());
        return OFFalse;
    }
    OFBool checkCallingAETitleAccepted(const OFString &calling) override
    {
        if (!config.accept_calling_ae || config.accept_calling_ae(config.user, calling.c_str()))
            return OFTrue;
        log(true, "association refused: no destination for calling AE title '%s'",
            calling.c_str());
        return OFFalse;
    }
    void notifyAbortRequest() override
    {
        /* A sender that cannot convert its file to what we accept aborts: say why. */
        if (!refused_xfers.empty())
            log(true, "association aborted by %s (it proposed transfer syntaxes this bridge "
                "does not decode: %s)", getPeerAETitle().c_str(), refused_xfers.c_str());
        else
            log(true, "association aborted by %s", getPeerAETitle().c_str());
    }
    void notifyDIMSEError(const OFCondition &cond) override
    {
        if (cond == DIMSE_NODATAAVAILABLE) {
            unsigned long n = count(&media_dicom_scp_counters::idle_aborted);
            log(true, "aborting the association with %s: nothing received for %d s; %lu idle "
                "connection(s) closed so far", getPeerAETitle().c_str(),
                config.dimse_timeout_s > 0 ? config.dimse_timeout_s : 30, n);
            return;
        }
        log(true, "DIMSE error from %s: %s", getPeerAETitle().c_str(), cond.text());
    }

  public:
    unsigned long count(unsigned long media_dicom_scp_counters::*field)
    {
        std::lock_guard<std::mutex> hold(count_lock);
        return config.counters ? ++(config.counters->*field) : 0;
    }
    /* Bytes in the regular files under dir (the spool and its queue folders). */
    static unsigned long long tree_bytes(const char *dir, int depth = 0)
    {
        unsigned long long total = 0;
        DIR *d = depth < 8 ? opendir(dir) : nullptr;
        if (!d)
            return 0;
        while (struct dirent *e = readdir(d)) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            if (S_ISREG(st.st_mode))
                total += (unsigned long long)st.st_size;
            else if (S_ISDIR(st.st_mode))
                total += tree_bytes((std::string(dir) + "/" + e->d_name).c_str(), depth + 1);
        }
        closedir(d);
        return total;
    }

  private:
    const media_dicom_scp_config &config;
    std::mutex &count_lock;
    std::string refused_xfers; /* of the current association, for the log */
};

} // namespace

namespace {

double now_s()
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

OFCondition setup(StoreProvider &scp, const media_dicom_scp_config *config)
{
    scp.setAETitle(config->ae_title && *config->ae_title ? config->ae_title : "ECHOVIEW");
    scp.setACSETimeout(config->acse_timeout_s > 0 ? config->acse_timeout_s : 30);
    scp.setDIMSETimeout(config->dimse_timeout_s > 0 ? config->dimse_timeout_s : 30);
    scp.setDIMSEBlockingMode(DIMSE_NONBLOCKING); /* else the DIMSE timeout is not applied */
    scp.setHostLookupEnabled(OFFalse);
    OFList<OFString> xfers;
    for (const char *uid : scp_transfer_syntaxes)
        xfers.push_back(uid);
    OFCondition cond = EC_Normal;
    for (const char *sop : scp_classes)
        if (cond.good())
            cond = scp.addPresentationContext(sop, xfers);
    OFList<OFString> native;
    native.push_back(UID_LittleEndianExplicitTransferSyntax);
    native.push_back(UID_LittleEndianImplicitTransferSyntax);
    if (cond.good())
        cond = scp.addPresentationContext(UID_VerificationSOPClass, native);
    return cond;
}

struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
};

#ifdef EV_DICOM_TLS
/* The listener's TLS layer from the configured PEM files, or NULL with err set. Each file is
 * opened first so that a missing or unreadable one is named with its reason (DCMTK's own
 * conditions say only that loading failed). */
std::unique_ptr<DcmTLSTransportLayer> tls_layer(const media_dicom_scp_config *c, ev_error *err)
{
    const struct {
        const char *what, *path;
    } files[] = {{"certificate", c->tls_certificate}, {"key", c->tls_key}, {"ca", c->tls_ca}};
    for (const auto &f : files) {
        if (!f.path)
            continue;
        struct stat st;
        int fd = open(f.path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = fd < 0 ? errno : 0;
            if (fd >= 0)
                close(fd);
            fail(err, EV_ERR_IO, "DICOM TLS: %s %s: %s", f.what, f.path,
                 e ? strerror(e) : "not a regular file");
            return nullptr;
        }
        close(fd);
    }
    std::unique_ptr<DcmTLSTransportLayer> layer(
        new DcmTLSTransportLayer(NET_ACCEPTOR, NULL, OFTrue));
    if (!*layer) {
        fail(err, EV_ERR_IO, "DICOM TLS: the TLS layer could not be set up (OpenSSL)");
        return nullptr;
    }
    OFCondition cond = layer->setTLSProfile(TSP_Profile_BCP195_ND);
    if (cond.good())
        cond = layer->activateCipherSuites();
    if (cond.bad()) {
        fail(err, EV_ERR_IO, "DICOM TLS: cipher suites: %s", cond.text());
        return nullptr;
    }
    if (layer->setPrivateKeyFile(c->tls_key, DCF_Filetype_PEM).bad()) {
        fail(err, EV_ERR_INVALID, "DICOM TLS: key %s is not a PEM private key (or is "
             "encrypted: give it without a passphrase)", c->tls_key);
        return nullptr;
    }
    if (layer->setCertificateFile(c->tls_certificate, DCF_Filetype_PEM).bad()) {
        fail(err, EV_ERR_INVALID, "DICOM TLS: certificate %s is not a PEM certificate",
             c->tls_certificate);
        return nullptr;
    }
    if (!layer->checkPrivateKeyMatchesCertificate()) {
        fail(err, EV_ERR_INVALID, "DICOM TLS: key %s does not match certificate %s", c->tls_key,
             c->tls_certificate);
        return nullptr;
    }
    if (c->tls_ca && layer->addTrustedCertificateFile(c->tls_ca, DCF_Filetype_PEM).bad()) {
        fail(err, EV_ERR_INVALID, "DICOM TLS: ca %s holds no PEM certificate", c->tls_ca);
        return nullptr;
    }
    /* with a CA, a certificate a client presents is verified; required only when asked */
    layer->setCertificateVerification(c->tls_require_client_cert ? DCV_requireCertificate
                                      : c->tls_ca                ? DCV_checkCertificate
                                                                 : DCV_ignoreCertificate);
    return layer;
}
#endif

int tls_config_ok(const media_dicom_scp_config *c, ev_error *err)
{
    if (!c->tls_certificate && !c->tls_key && !c->tls_ca && !c->tls_require_client_cert)
        return EV_OK;
    if (!c->tls_certificate || !c->tls_key)
        return fail(err, EV_ERR_INVALID, "DICOM TLS needs both a certificate and a key");
    if (c->tls_require_client_cert && !c->tls_ca)
        return fail(err, EV_ERR_INVALID, "DICOM TLS: requiring client certificates needs a ca "
                    "to verify them with");
#ifndef EV_DICOM_TLS
    return fail(err, EV_ERR_UNSUPPORTED, "DICOM TLS: this build has no DCMTK TLS layer "
                "(libdcmtls and OpenSSL were not found at configure time)");
#else
    return EV_OK;
#endif
}

/* A connection whose A-ASSOCIATE-RQ has not arrived whole yet. */
struct Pending {
    int fd;
    double deadline;
    std::string peer;
    bool partial; /* some bytes are there: look again shortly instead of polling for more */
};

/* Whole A-ASSOCIATE-RQ PDU (or something else DCMTK should answer) waiting on fd: 1; not yet: 0;
 * closed: -1; on a TLS listener, a plaintext A-ASSOCIATE-RQ: 2. A TLS client's first record
 * (its ClientHello) is waited for whole the same way. */
int request_ready(int fd, bool tls)
{
    unsigned char head[6];
    ssize_t n = recv(fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return -1;
    if (n < (ssize_t)sizeof head)
        return 0;
    size_t need = 6 + ((size_t)head[2] << 24 | (size_t)head[3] << 16 | (size_t)head[4] << 8 |
                       head[5]);
    if (tls && head[0] == 0x01)
        return 2;
    if (tls && head[0] == 0x16) /* a TLS handshake record: 5 bytes of header, then its length */
        need = 5 + ((size_t)head[3] << 8 | head[4]);
    else if (head[0] != 0x01 || need > 65536)
        return 1; /* not a request, or too large to wait for: DCMTK refuses or reads it */
    std::vector<unsigned char> buf(need);
    n = recv(fd, buf.data(), need, MSG_PEEK | MSG_DONTWAIT);
    return n >= (ssize_t)need ? 1 : 0;
}

} // namespace

extern "C" int media_dicom_tls_check(const media_dicom_scp_config *config, ev_error *err)
{
    if (!config)
        return fail(err, EV_ERR_INVALID, "media_dicom_tls_check: no configuration");
    int checked = tls_config_ok(config, err);
    if (checked != EV_OK)
        return checked;
#ifdef EV_DICOM_TLS
    if (config->tls_certificate && !tls_layer(config, err))
        return err ? err->code : EV_ERR_INVALID;
#endif
    return EV_OK;
}

extern "C" int media_dicom_scp_run(const media_dicom_scp_config *config, ev_error *err)
{
    if (!config || !config->spool_dir || config->port < 1 || config->port > 65535)
        return fail(err, EV_ERR_INVALID, "media_dicom_scp_run: bad configuration");
    const char *address = config->bind_address && *config->bind_address ? config->bind_address
                                                                         : "127.0.0.1";
    struct sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)config->port);
    if (inet_pton(AF_INET, address, &sin.sin_addr) != 1)
        return fail(err, EV_ERR_INVALID, "DICOM listener: bind address '%s' is not a numeric "
                    "IPv4 address", address);
    const int max_assoc = config->max_associations > 0 ? config->max_associations : 4;
    const int idle_s = config->idle_timeout_s > 0 ? config->idle_timeout_s : 10;
    int checked = tls_config_ok(config, err);
    if (checked != EV_OK)
        return checked;
    const bool tls = config->tls_certificate != NULL;
    dicom_global_init();
#ifdef EV_DICOM_TLS
    std::unique_ptr<DcmTLSTransportLayer> layer; /* outlives the network (dropped below) */
    if (tls && !(layer = tls_layer(config, err)))
        return err ? err->code : EV_ERR_INVALID;
#endif

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 64) != 0) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        return fail(err, EV_ERR_IO, "DICOM listener on %s:%d: %s", address, config->port,
                    strerror(e));
    }
    std::mutex count_lock;
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<Pending> pending;
    T_ASC_Network *net = nullptr;
    int rc = EV_OK;
    try {
        StoreProvider logger(*config, count_lock); /* for lines not tied to an association */
        /* An external socket handle keeps DCMTK from opening its own listener (on every
         * interface); each association is then read from the connection we accepted. */
        dcmDisableGethostbyaddr.set(OFTrue); /* process-wide: peers are logged by address */
        dcmExternalSocketHandle.set(lfd);
        OFCondition cond = ASC_initializeNetwork(NET_ACCEPTOR, 0, 30, &net);
        dcmExternalSocketHandle.set(-1);
        if (cond.bad()) {
            close(lfd);
            return fail(err, EV_ERR_IO, "DICOM listener: %s", cond.text());
        }
#ifdef EV_DICOM_TLS
        if (tls && (cond = ASC_setTransportLayer(net, layer.get(), 0)).bad()) {
            ASC_dropNetwork(&net);
            close(lfd);
            return fail(err, EV_ERR_IO, "DICOM TLS: %s", cond.text());
        }
#endif
        logger.log(false, "listening on %s:%d as %s (at most %d association(s) at once, idle "
                   "timeout %d s%s%s)", address, config->port,
                   config->ae_title && *config->ae_title ? config->ae_title : "ECHOVIEW",
                   max_assoc, idle_s, config->spool_max_bytes ? ", spool capped" : "",
                   !tls ? ""
                   : config->tls_require_client_cert ? ", TLS, client certificates required"
                                                     : ", TLS");
        while (!(config->should_stop && config->should_stop(config->user))) {
            std::vector<struct pollfd> fds;
            fds.push_back({lfd, POLLIN, 0});
            bool any_partial = false;
            for (const Pending &p : pending) {
                fds.push_back({p.fd, (short)(p.partial ? 0 : POLLIN), 0});
                any_partial = any_partial || p.partial;
            }
            int n = poll(fds.data(), fds.size(), any_partial ? 50 : 200);
            double now = now_s();
            if (n > 0 && (fds[0].revents & POLLIN))
                for (;;) {
                    struct sockaddr_in from = {};
                    socklen_t len = sizeof from;
                    int fd = accept4(lfd, (struct sockaddr *)&from, &len, SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    char ip[INET_ADDRSTRLEN] = "?";
                    inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
                    pending.push_back({fd, now + idle_s,
                                       std::string(ip) + ":" + std::to_string(ntohs(from.sin_port)),
                                       false});
                }
            std::vector<Pending> waiting;
            for (size_t i = 0; i < pending.size(); i++) {
                Pending p = pending[i];
                int ready = request_ready(p.fd, tls);
                if (ready < 0) {
                    close(p.fd);
                    continue;
                }
                if (ready == 2) {
                    unsigned long c = logger.count(&media_dicom_scp_counters::tls_refused);
                    logger.log(true, "connection from %s refused: a plaintext association "
                               "request, this listener takes DICOM TLS only (listen.tls); %lu "
                               "TLS connection(s) refused so far", p.peer.c_str(), c);
                    close(p.fd);
                    continue;
                }
                if (ready == 0) {
                    if (now >= p.deadline) {
                        unsigned long c = logger.count(&media_dicom_scp_counters::idle_aborted);
                        logger.log(true, "closing the connection from %s: no association request "
                                   "within %d s; %lu idle connection(s) closed so far",
                                   p.peer.c_str(), idle_s, c);
                        close(p.fd);
                        continue;
                    }
                    unsigned char b;
                    p.partial = recv(p.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
                    waiting.push_back(p);
                    continue;
                }
                T_ASC_Association *assoc = nullptr;
                if (tls) {
                    /* the handshake reads on from here, blocking: a client that stops
                     * half-way holds the listener for idle-timeout at most */
                    struct timeval tv = {idle_s, 0};
                    setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                    setsockopt(p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                }
                dcmExternalSocketHandle.set(p.fd);
                cond = ASC_receiveAssociation(net, &assoc, ASC_DEFAULTMAXPDU, NULL, NULL,
                                              tls ? OFTrue : OFFalse, DUL_NOBLOCK, 1);
                dcmExternalSocketHandle.set(-1);
                if (cond.bad() && tls) {
                    unsigned long c = logger.count(&media_dicom_scp_counters::tls_refused);
                    logger.log(true, "connection from %s refused: TLS: %s; %lu TLS "
                               "connection(s) refused so far", p.peer.c_str(), cond.text(), c);
                    if (assoc) {
                        ASC_dropAssociation(assoc);
                        ASC_destroyAssociation(&assoc);
                    } else {
                        close(p.fd);
                    }
                    continue;
                }
                if (cond.bad()) {
                    logger.log(true, "connection from %s: %s", p.peer.c_str(), cond.text());
                    if (assoc) {
                        ASC_dropAssociation(assoc);
                        ASC_destroyAssociation(&assoc);
                    } else {
                        close(p.fd);
                    }
                    continue;
                }
                workers.erase(std::remove_if(workers.begin(), workers.end(),
                                             [](std::unique_ptr<Worker> &w) {
                                                 if (!w->done)
                                                     return false;
                                                 w->thread.join();
                                                 return true;
                                             }),
                              workers.end());
                if ((int)workers.size() >= max_assoc) {
                    unsigned long c = logger.count(&media_dicom_scp_counters::busy_refused);
                    logger.log(true, "association from %s (%s) rejected (transient, local limit "
                               "exceeded): %d association(s) running; %lu rejected so far",
                               assoc->params->DULparams.callingAPTitle, p.peer.c_str(),
                               max_assoc, c);
                    T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDTRANSIENT,
                                                  ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED,
                                                  ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED};
                    ASC_rejectAssociation(assoc, &rej);
                    ASC_dropAssociation(assoc);
                    ASC_destroyAssociation(&assoc);
                    continue;
                }
                logger.count(&media_dicom_scp_counters::associations);
                workers.push_back(std::unique_ptr<Worker>(new Worker));
                Worker *w = workers.back().get();
                std::string calling = assoc->params->DULparams.callingAPTitle;
                w->thread = std::thread([config, assoc, w, &count_lock, calling] {
                    try {
                        StoreProvider scp(*config, count_lock);
                        if (setup(scp, config).good())
                            scp.run(assoc);
                    } catch (const std::exception &e) {
                        if (config->log)
                            config->log(config->user, 1, e.what());
                    }
                    /* The slot is free from here on (max-associations counts finished workers
                     * out); the line says so, after the fact, for operators and tests. */
                    w->done = true;
                    if (config->log) {
                        std::string line = "association with " + calling + " ended";
                        config->log(config->user, 0, line.c_str());
                    }
                });
            }
            pending.swap(waiting);
        }
    } catch (const std::exception &e) {
        rc = fail(err, EV_ERR_NOMEM, "DICOM listener: %s", e.what());
    }
    for (const Pending &p : pending)
        close(p.fd);
    for (auto &w : workers)
        w->thread.join();
    if (net)
        ASC_dropNetwork(&net);
    close(lfd);
    return rc;
}
