#!/usr/bin/perl
# classic-merge.pl: what the classic wanna-build's --merge-v3 registers in
# an empty database, computed by the classic code itself.
#
#   perl classic-merge.pl CLASSIC ARCH PAS SOURCES PACKAGES
#
# CLASSIC is a checkout of the classic wanna-build (lib/WB/QD.pm,
# lib/WannaBuild.pm, bin/wanna-build). Its WB::QD::readsourcebins reads the
# indexes; its parse_all_v3, taken verbatim from bin/wanna-build and
# evaluated here, decides each source's state. The only code of ours is the
# database: an empty one (get_all_source_info), and update_source_info /
# change_state recording what parse_all_v3 writes. The indexes may be
# compressed (the classic reader inflates gzip; xz is read through xz -dc).
#
# Output, one line per source, sorted:
#   SOURCE <TAB> VERSION <TAB> STATUS <TAB> STATE <TAB> NOTES <TAB> BINNMU
# STATUS is readsourcebins' status; STATE is "-" when parse_all_v3 does not
# register the source.
use strict;
use warnings;

die "usage: classic-merge.pl CLASSIC ARCH PAS SOURCES PACKAGES\n" unless @ARGV == 5;
my ($classic, $arch_arg, $pas, $sources, $packages) = @ARGV;

unshift @INC, "$classic/lib";
require WB::QD;
require WannaBuild;
WannaBuild->import;

use Dpkg::Version ();
{ no warnings 'once'; *vercmp = \&Dpkg::Version::version_compare; }

our ($verbose, $simulate, $arch, $distribution) = (0, 0, $arch_arg, 'parity');
my %db;

sub get_all_source_info { return {} }
sub change_state { my ($pkg, $state) = @_; $$pkg->{'state'} = $state }
sub update_source_info { my $a = shift; $db{$a->{'pkg'}{'package'}} = { %{$a->{'pkg'}} } }
sub del_source_info { my $a = shift; delete $db{$a->{'pkg'}{'package'}} }

# parse_all_v3 verbatim from the classic program.
open(my $wb, '<', "$classic/bin/wanna-build") or die "$classic/bin/wanna-build: $!\n";
my ($code, $in) = ('', 0);
while (<$wb>) {
    $in = 1 if /^sub parse_all_v3 \{/;
    $code .= $_ if $in;
    last if $in && /^\}/;
}
close $wb;
die "$classic/bin/wanna-build: no sub parse_all_v3\n" unless $code;
eval "no warnings; $code; 1" or die "parse_all_v3: $@";

# readsourcebins inflates gzip only; give it plain files.
sub plain {
    my $f = shift;
    return $f unless $f =~ /\.xz$/;
    (my $out = $f) =~ s,.*/,,;
    $out = ($ENV{TMPDIR} || '/tmp') . "/classic-merge-$$-" . substr($out, 0, -3);
    system("xz -dc '$f' > '$out'") == 0 or die "xz -dc $f: failed\n";
    return $out;
}
my ($s, $p) = (plain($sources), plain($packages));
my $r = WB::QD::readsourcebins($arch, $pas, [$s], [$p]);
unlink grep { $_ ne $sources && $_ ne $packages } ($s, $p);
die "readsourcebins: $r\n" unless ref $r;
my $srcs = $$r;
{
    no warnings;
    main::parse_all_v3($srcs, { 'arch' => $arch, 'suite' => $distribution, 'time' => 0 });
}

for my $name (sort keys %$srcs) {
    next if $name eq '_binary';
    my $src = $srcs->{$name};
    my $pkg = $db{$name};
    printf "%s\t%s\t%s\t%s\t%s\t%s\n", $name, $src->{'version'}, $src->{'status'},
        $pkg ? $pkg->{'state'} : '-', ($pkg && $pkg->{'notes'}) // '', ($pkg && $pkg->{'binary_nmu_version'}) // '';
}
