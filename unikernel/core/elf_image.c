#include "unikernel/core/elf_image.h"

#include <elf.h>
#include <string.h>

#include "unikernel/core/abi/crius_abi.h"

static const char *target_name(uint32_t t)
{
    switch (t) {
    case HVT_ABI_TARGET: return "hvt";
    case SPT_ABI_TARGET: return "spt";
    case VIRTIO_ABI_TARGET: return "virtio";
    case MUEN_ABI_TARGET: return "muen";
    case GENODE_ABI_TARGET: return "genode";
    case XEN_ABI_TARGET: return "xen";
    default: return "unknown";
    }
}

static int check_ehdr(const Elf64_Ehdr *h, size_t len, struct terr *e)
{
    if (memcmp(h->e_ident, ELFMAG, SELFMAG) != 0)
        return terr_set(e, "not an ELF file");
    if (h->e_ident[EI_CLASS] != ELFCLASS64 || h->e_ident[EI_DATA] != ELFDATA2LSB)
        return terr_set(e, "not a little-endian ELF64 file");
    if (h->e_machine != EM_X86_64)
        return terr_set(e, "built for ELF machine %u, not x86-64", h->e_machine);
    if (h->e_type != ET_EXEC)
        return terr_set(e, "ELF type %u is not a static executable (ET_EXEC)",
                        h->e_type);
    if (h->e_version != EV_CURRENT || h->e_ehsize != sizeof(Elf64_Ehdr) ||
        h->e_phentsize != sizeof(Elf64_Phdr))
        return terr_set(e, "unsupported ELF header version or sizes");
    if (h->e_phnum == 0 || h->e_phnum == PN_XNUM)
        return terr_set(e, "no program headers");
    if (h->e_phoff > len || (uint64_t)h->e_phnum * sizeof(Elf64_Phdr) > len - h->e_phoff)
        return terr_set(e, "truncated: program headers extend past end of file");
    if (h->e_phoff % 8 != 0)
        return terr_set(e, "misaligned program headers");
    return 0;
}

/* A Solo5-style note: first note of its PT_NOTE segment, owner `owner`,
 * payload at the 20-byte header rounded up to `align`. */
static int find_note(const uint8_t *file, size_t len, const Elf64_Phdr *ph,
                     unsigned phnum, const char *owner, uint32_t type,
                     size_t align, size_t max_size, const uint8_t **out,
                     size_t *out_size, struct terr *e)
{
    *out = NULL;
    for (unsigned i = 0; i < phnum; i++) {
        if (ph[i].p_type != PT_NOTE)
            continue;
        if (ph[i].p_offset > len || ph[i].p_filesz > len - ph[i].p_offset)
            return terr_set(e, "truncated: note segment %u extends past end of file", i);
        if (ph[i].p_filesz < sizeof(struct solo5_nhdr))
            continue;
        struct solo5_nhdr h;
        memcpy(&h, file + ph[i].p_offset, sizeof h);
        if (h.n_namesz != strlen(owner) + 1 || memcmp(h.n_name, owner, h.n_namesz) != 0 ||
            h.n_type != type)
            continue;
        size_t payload = (sizeof h + align - 1) & ~(align - 1);
        size_t pad = payload - sizeof h;
        if (h.n_descsz <= pad || h.n_descsz - pad > max_size ||
            ph[i].p_filesz < sizeof h + h.n_descsz)
            return terr_set(e, "malformed %s note (type 0x%x): size %u", owner, type,
                            h.n_descsz);
        *out = file + ph[i].p_offset + payload;
        *out_size = h.n_descsz - pad;
        return 0;
    }
    return 0;
}

static int parse_segment(const Elf64_Phdr *p, unsigned i, size_t len,
                         uint64_t min_base, struct elf_segment *s, struct terr *e)
{
    uint64_t align = p->p_align ? p->p_align : 1;
    if (align & (align - 1))
        return terr_set(e, "segment %u: alignment %lu is not a power of two", i,
                        (unsigned long)align);
    if (p->p_offset > len || p->p_filesz > len - p->p_offset)
        return terr_set(e, "truncated: segment %u extends past end of file", i);
    if (p->p_memsz < p->p_filesz)
        return terr_set(e, "segment %u: memory size below file size", i);
    if (p->p_vaddr < min_base)
        return terr_set(e, "segment %u: address 0x%lx below the guest base 0x%lx", i,
                        (unsigned long)p->p_vaddr, (unsigned long)min_base);
    if (p->p_vaddr >= ELF_MAX_IMAGE_END || p->p_memsz > ELF_MAX_IMAGE_END - p->p_vaddr)
        return terr_set(e, "segment %u: huge: 0x%lx bytes at 0x%lx exceed the %llu GiB limit",
                        i, (unsigned long)p->p_memsz, (unsigned long)p->p_vaddr,
                        ELF_MAX_IMAGE_END >> 30);
    s->vaddr = p->p_vaddr;
    s->filesz = p->p_filesz;
    s->memsz = p->p_memsz;
    s->offset = p->p_offset;
    s->start = p->p_vaddr & ~(uint64_t)(ELF_PAGE_SIZE - 1);
    s->end = (p->p_vaddr + p->p_memsz + ELF_PAGE_SIZE - 1) & ~(uint64_t)(ELF_PAGE_SIZE - 1);
    if (s->start < min_base)
        return terr_set(e, "segment %u: page below the guest base", i);
    s->r = p->p_flags & PF_R;
    s->w = p->p_flags & PF_W;
    s->x = p->p_flags & PF_X;
    if (s->w && s->x)
        return terr_set(e, "segment %u: asks for write and execute (W+X)", i);
    return 0;
}

int elf_parse(const uint8_t *file, size_t len, uint64_t min_base,
              struct elf_image *img, struct terr *e)
{
    memset(img, 0, sizeof *img);
    if (len < sizeof(Elf64_Ehdr))
        return terr_set(e, "truncated: %zu bytes is shorter than an ELF header", len);
    Elf64_Ehdr eh;
    memcpy(&eh, file, sizeof eh);
    if (check_ehdr(&eh, len, e) < 0)
        return -1;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(file + eh.e_phoff);

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
            continue;
        if (img->nseg == ELF_MAX_SEGMENTS)
            return terr_set(e, "more than %d loadable segments", ELF_MAX_SEGMENTS);
        struct elf_segment *s = &img->seg[img->nseg];
        if (parse_segment(&ph[i], i, len, min_base, s, e) < 0)
            return -1;
        for (unsigned j = 0; j < img->nseg; j++)
            if (s->start < img->seg[j].end && img->seg[j].start < s->end)
                return terr_set(e, "segment %u: pages 0x%lx-0x%lx overlap another segment", i,
                                (unsigned long)s->start, (unsigned long)s->end);
        if (s->end > img->end)
            img->end = s->end;
        img->nseg++;
    }
    if (img->nseg == 0)
        return terr_set(e, "no loadable segments");

    bool entry_ok = false;
    for (unsigned j = 0; j < img->nseg; j++)
        if (img->seg[j].x && eh.e_entry >= img->seg[j].vaddr &&
            eh.e_entry < img->seg[j].vaddr + img->seg[j].memsz)
            entry_ok = true;
    if (!entry_ok)
        return terr_set(e, "entry point 0x%lx is outside every executable segment",
                        (unsigned long)eh.e_entry);
    img->entry = eh.e_entry;

    const uint8_t *p;
    size_t size;
    if (find_note(file, len, ph, eh.e_phnum, ABI1_NOTE_NAME, ABI1_NOTE_TYPE, 4,
                  sizeof(struct abi1_info), &p, &size, e) < 0)
        return -1;
    if (!p)
        return terr_set(e, "no Solo5 ABI note: not a Solo5 guest");
    if (size != sizeof(struct abi1_info))
        return terr_set(e, "malformed Solo5 ABI note: %zu bytes", size);
    memcpy(&img->abi, p, sizeof img->abi);

    if (find_note(file, len, ph, eh.e_phnum, MFT1_NOTE_NAME, MFT1_NOTE_TYPE, 8,
                  MFT1_MAX_SIZE, &p, &size, e) < 0)
        return -1;
    if (!p)
        return terr_set(e, "no Solo5 manifest note");
    if ((uintptr_t)p % 8 != 0)
        return terr_set(e, "malformed Solo5 manifest note: payload not 8-byte aligned");
    img->mft = (const struct mft *)p;
    img->mft_size = size;

    if (find_note(file, len, ph, eh.e_phnum, CRIUS_NOTE_NAME, CRIUS_SHD1_NOTE_TYPE, 4,
                  sizeof(struct crius_shd1_info), &p, &size, e) < 0)
        return -1;
    if (p) {
        struct crius_shd1_info info;
        if (size != sizeof info)
            return terr_set(e, "malformed crius shutdown note: %zu bytes", size);
        memcpy(&info, p, sizeof info);
        if (info.version != CRIUS_SHD1_VERSION)
            return terr_set(e, "crius shutdown note version %u, this tender knows %u",
                            info.version, CRIUS_SHD1_VERSION);
        img->shutdown_aware = true;
    }
    return 0;
}

int elf_check_abi(const struct elf_image *img, uint32_t target, uint32_t version,
                  struct terr *e)
{
    if (img->abi.abi_target != target)
        return terr_set(e, "guest is built for the Solo5 %s target (%u), this tender runs %s",
                        target_name(img->abi.abi_target), img->abi.abi_target,
                        target_name(target));
    if (img->abi.abi_version != version)
        return terr_set(e, "guest is built for %s ABI version %u, this tender speaks version %u",
                        target_name(target), img->abi.abi_version, version);
    return 0;
}

int elf_check_fits(const struct elf_image *img, uint64_t mem_size, struct terr *e)
{
    if (img->end > mem_size)
        return terr_set(e, "guest image ends at 0x%lx, beyond guest memory of %lu MiB",
                        (unsigned long)img->end, (unsigned long)(mem_size >> 20));
    return 0;
}

void elf_copy_segments(const struct elf_image *img, const uint8_t *file, uint8_t *mem)
{
    for (unsigned i = 0; i < img->nseg; i++)
        memcpy(mem + img->seg[i].vaddr, file + img->seg[i].offset, img->seg[i].filesz);
}
